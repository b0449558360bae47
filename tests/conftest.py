"""Fixtures shared by every test package.

- ``db_url``: an EMPTY database, parametrised over a SQLite file in ``tmp_path`` and, when the environment
  variable ``NETMON_TEST_PG_URL`` names a PostgreSQL superuser URL (CI sets it, e.g.
  ``postgresql+psycopg://netmon:netmon@127.0.0.1:5432/postgres``), a fresh PostgreSQL database created for
  the test and dropped afterwards. Call ``netmon.store.db.upgrade(db_url)`` (or use ``store_url``).
- ``store_url``: the same, already migrated to the latest schema.
- ``free_port``: a free TCP port on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "NETMON_TEST_PG_URL"
_BACKENDS = ["sqlite"] + (
    [pytest.param("postgresql", marks=pytest.mark.postgres)] if os.environ.get(PG_ENV) else []
)


def _pg_admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(os.environ[PG_ENV], isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(params=_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'netmon-test.db'}"
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"netmon_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(os.environ[PG_ENV]).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def store_url(db_url: str) -> str:
    """``db_url`` migrated to the latest schema (every feature branch)."""
    from netmon.store.db import upgrade

    upgrade(db_url)
    return db_url


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
