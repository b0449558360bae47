"""The store: migrations up on SQLite and PostgreSQL, and the migrations match the models exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

import netmon.store.models  # noqa: F401  (every feature's tables)
from netmon.cli import main
from netmon.store.base import Base
from netmon.store.db import alembic_config, make_engine, upgrade
from netmon.store.incidents import AuditEvent, Incident, audit

CORE_TABLES = {"incidents", "audit_events"}


def diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def _tables(entry: object) -> set[str]:
    """Table names an autogenerate diff entry is about."""
    names = set()
    items = entry if isinstance(entry, list) else [entry]
    for item in items:
        for part in item if isinstance(item, tuple) else (item,):
            name = getattr(part, "name", None) if hasattr(part, "columns") else None
            table = getattr(part, "table", None)
            if isinstance(part, str):
                names.add(part)
            if name:
                names.add(name)
            if table is not None and getattr(table, "name", None):
                names.add(table.name)
    return names


def test_upgrade_creates_every_table_and_is_idempotent(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert CORE_TABLES <= tables
    assert set(Base.metadata.tables) <= tables


def test_core_migration_matches_the_models(db_url: str) -> None:
    upgrade(db_url)
    core = [d for d in diff(db_url) if _tables(d) & CORE_TABLES]
    assert core == []


def test_every_migration_matches_the_models(db_url: str) -> None:
    """All features together: the schema Alembic builds is exactly the one the models describe."""
    upgrade(db_url)
    assert diff(db_url) == []


def test_every_branch_starts_at_core_and_heads_are_applied(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(db_url))
    for rev in script.walk_revisions():
        if rev.revision != "0001":
            assert rev.down_revision is not None
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    assert current == set(script.get_heads())


def test_times_are_aware_utc_on_every_backend(store_url: str) -> None:
    t = datetime(2026, 11, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        session.add(
            Incident(
                uid="u" * 32,
                time=t,
                last_seen=t,
                count=1,
                site="",
                client_ip="10.0.0.1",
                host="h",
                url="u",
                source="page",
                category="c",
                severity=1,
                phrase="p",
                phrases=[],
                excerpt="",
                explanation=[],
                evidence={},
                dedup_key="k",
                capture_text="",
                groups=[],
            )
        )
        audit(session, "export", actor="admin", rows=0)
    with Session(engine) as session:
        got = session.scalars(select(Incident)).one()
        event = session.scalars(select(AuditEvent)).one()
    engine.dispose()
    assert got.time == t and got.time.tzinfo is not None and got.time.utcoffset() == timedelta(0)
    assert got.time == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert event.time.tzinfo is not None and event.detail == {"rows": 0} and event.actor == "admin"


def test_naive_datetimes_are_refused(store_url: str) -> None:
    engine = make_engine(store_url)
    with pytest.raises(Exception, match="naive datetime"), Session(engine) as session, session.begin():
        session.add(AuditEvent(action="x", time=datetime(2026, 1, 1), detail={}))
    engine.dispose()


def test_db_upgrade_command(db_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert diff(db_url) == [] or all(not (_tables(d) & CORE_TABLES) for d in diff(db_url))


def test_db_upgrade_unreachable_is_one_line(free_port: int) -> None:
    url = f"postgresql+psycopg://netmon:netmon@127.0.0.1:{free_port}/nothing?connect_timeout=3"
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) >= 1 and "cannot open database" in result.stderr
