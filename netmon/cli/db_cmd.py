"""``netmon db upgrade``: create or migrate the store."""

from __future__ import annotations

import click

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError


@click.group()
def db() -> None:
    """Manage the incident store."""


@db.command()
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
def upgrade(db_url: str | None) -> None:
    """Create the schema or migrate it to this version of netmon."""
    from netmon.store.db import upgrade as do_upgrade

    url = db_url or default_db_url()
    try:
        do_upgrade(url)
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database is up to date")
