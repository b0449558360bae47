"""Whether the incident store can be written: errors that mean "down, retry later", the writer's
engine, and a watch on a SQLite file that can vanish or be replaced under a running proxy.

A deleted SQLite file is the dangerous case: connections already open keep writing into the deleted
inode without an error, and every incident written then is lost when they close. ``SqliteWatch`` notes
the file's device and inode when the store is known good and checks them before each batch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from netmon.errors import StoreError
from netmon.store.db import make_engine

#: Errors that mean "the store cannot be written now" (down, unreachable, locked, disk full or failing,
#: its file gone): spill, retry later.
STORE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, StoreError)


def store_down(exc: BaseException) -> bool:
    """True when ``exc`` says the store is unavailable (as opposed to a bug or a bad row)."""
    return isinstance(exc, STORE_DOWN) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class StoreGone(StoreError):
    """The SQLite file was deleted or replaced under the writer."""


class SqliteWatch:
    """The identity (device, inode) of a SQLite store's file; a no-op for other stores."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        db = parsed.database if parsed.get_backend_name() == "sqlite" else None
        self.path = Path(db) if db and db != ":memory:" and not db.startswith("file:") else None
        self.identity: tuple[int, int] | None = None

    def _stat(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def missing(self) -> bool:
        """True when the file was known and is gone now (it is not created again behind anyone's back)."""
        return self.path is not None and self.identity is not None and self._stat() is None

    def settle(self) -> None:
        """The store was just found writable: remember what its file is."""
        if self.path is not None:
            self.identity = self._stat()

    def check(self) -> None:
        """Raise ``StoreGone`` when the file is not the one the writer has been writing to."""
        if self.path is None or self.identity is None:
            return
        now = self._stat()
        if now is None:
            raise StoreGone(f"{self.path}: the database file is gone")
        if now != self.identity:
            raise StoreGone(f"{self.path}: the database file was replaced")


def writer_engine(url: str, busy_timeout: float | None, site: str | None = None) -> Engine:
    """The writer's engine; ``site`` (default ``NETMON_SITE``) goes on audit rows written in its batches."""
    kwargs: dict[str, Any] = {}
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        # A link that goes quiet (cut, or packets dropped) must fail a batch in seconds, not after TCP's
        # retransmissions give up (~15 minutes): the results then spill and the proxy goes on.
        kwargs["connect_args"] = {
            "connect_timeout": 10,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 20_000,
        }
    engine = make_engine(url, site=site, **kwargs)
    if backend == "sqlite" and busy_timeout is not None:
        ms = int(busy_timeout * 1000)

        def _busy(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA busy_timeout={ms}")

        event.listen(engine, "connect", _busy)
    return engine


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<invalid url>"
