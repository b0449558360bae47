"""Engines and schema migrations for any SQLAlchemy URL."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from netmon.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


#: The execution option that carries the site (school) of everything written through an engine.
SITE_OPTION = "netmon_site"


def local_site() -> str:
    """This process's site: ``NETMON_SITE`` ("" for a single school, or a trust-wide tool)."""
    return os.environ.get("NETMON_SITE", "").strip()[:100]


def store_site(bind: Any) -> str:
    """The site of a Session, Connection or Engine made by :func:`make_engine` ("" when it has none)."""
    if hasattr(bind, "get_bind"):  # a Session
        bind = bind.get_bind()
    return str(bind.get_execution_options().get(SITE_OPTION, ""))


def make_engine(url: str, *, site: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; SQLite files get WAL, NORMAL sync, foreign keys and a busy timeout.

    ``site`` (default: :func:`local_site`) is the school this engine writes for: an audit row added
    without a site of its own gets it, and device sessions are read and written for it."""
    engine = _create(url, **kwargs)
    engine.update_execution_options(**{SITE_OPTION: local_site() if site is None else site[:100]})
    return engine


def _create(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema at ``url`` up to date (every feature branch: ``heads``)."""
    from alembic import command

    logging.getLogger("alembic").setLevel(logging.WARNING)  # no "Context impl ..." lines in the proxy log
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StoreError(
            f"cannot open database {make_url(url).render_as_string(hide_password=True)}: "
            f"{cause[0] if cause else exc.__class__.__name__}"
        ) from exc


def open_store(url: str, *, site: str | None = None, **kwargs: Any) -> Engine:
    """Migrate the database at ``url`` to the latest schema and return an engine for it."""
    upgrade(url)
    return make_engine(url, site=site, **kwargs)
