"""A suggestion's scope in its own column: migration 0013c moves ``on:SCOPE`` out of ``host`` (and back
on downgrade) on SQLite and PostgreSQL, and suggestion_scope reads the column (and the old form)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from netmon.incidents import suggestion_scope as scoping
from netmon.store.base import UTCDateTime, utcnow
from netmon.store.db import alembic_config, make_engine, upgrade
from netmon.store.suggestions import PENDING, LibrarySuggestion

ROW = dict(
    created_by="dsl", incident_uid="u1", kind="exception", category="violence", language="en",
    phrase="shoot", severity=3, library_file="en/violence.txt", line=4, exception="shoot the breeze",
    reason="", status=PENDING, decision_reason="", overlay_file="",
)  # fmt: skip
#: The table as 0013b made it (no scope column).
OLD = sa.table(
    "library_suggestions",
    sa.column("created_at", UTCDateTime()),
    sa.column("host", sa.String()),
    *(sa.column(name) for name in ROW),
)
BEFORE = ["on:sport.example", "on:sport.example/report/2026", "news.example", ""]


def columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("library_suggestions")}


def test_upgrade_moves_scopes_out_of_host_and_downgrade_puts_them_back(db_url: str) -> None:
    upgrade(db_url, "0013b")
    engine = make_engine(db_url)
    assert "scope" not in columns(engine)
    with engine.begin() as conn:
        for host in BEFORE:
            conn.execute(sa.insert(OLD).values(created_at=utcnow(), host=host, **ROW))
    engine.dispose()

    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as db:
        rows = list(db.scalars(select(LibrarySuggestion).order_by(LibrarySuggestion.id)))
        assert [(r.host, r.scope) for r in rows] == [
            ("sport.example", "sport.example"),
            ("sport.example", "sport.example/report/2026"),
            ("news.example", ""),
            ("", ""),
        ]
        assert [scoping.scope_of(r) for r in rows] == ["sport.example", "sport.example/report/2026", "", ""]
        assert [scoping.fired_on(r) for r in rows] == ["sport.example", "sport.example", "news.example", ""]
    engine.dispose()

    command.downgrade(alembic_config(db_url), "0013b")
    engine = make_engine(db_url)
    assert "scope" not in columns(engine)
    with engine.connect() as conn:
        hosts = [r[0] for r in conn.execute(select(OLD.c.host).order_by(OLD.c.created_at, OLD.c.phrase))]
    engine.dispose()
    assert sorted(hosts) == sorted(BEFORE)


def test_a_new_suggestion_keeps_host_and_scope_apart(store_url: str) -> None:
    engine = make_engine(store_url)
    with Session(engine) as db, db.begin():
        db.add(
            LibrarySuggestion(
                created_at=utcnow(), **ROW, **scoping.stored("sport.example", "sport.example/report")
            )
        )
        db.add(LibrarySuggestion(created_at=utcnow(), **ROW, **scoping.stored("news.example", "")))
    with Session(engine) as db:
        page, everywhere = db.scalars(select(LibrarySuggestion).order_by(LibrarySuggestion.id))
        assert (page.host, page.scope) == ("sport.example", "sport.example/report")
        assert (scoping.scope_of(page), scoping.fired_on(page)) == ("sport.example/report", "sport.example")
        assert (everywhere.host, everywhere.scope) == ("news.example", "")
        assert (scoping.scope_of(everywhere), scoping.fired_on(everywhere)) == ("", "news.example")
        assert scoping.describe_scope(scoping.scope_of(page)).startswith(
            "only on pages of sport.example under"
        )
    engine.dispose()


def test_the_host_column_alone_still_reads_the_old_form() -> None:
    assert scoping.scope_of("on:sport.example/report") == "sport.example/report"
    assert scoping.fired_on("on:sport.example/report") == "sport.example"
    assert (scoping.scope_of("news.example"), scoping.fired_on("news.example")) == ("", "news.example")
    assert scoping.stored_host("sport.example", "sport.example") == "on:sport.example"
