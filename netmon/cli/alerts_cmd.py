"""``netmon alerts``: the alert outbox (list, send)."""

from __future__ import annotations

import asyncio
import logging
import os

import click

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError

log = logging.getLogger(__name__)


@click.group()
def alerts() -> None:
    """Inspect and deliver the alert outbox."""


@alerts.command("list")
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
@click.option("--state", type=click.Choice(["pending", "sent", "suppressed"]), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
def list_alerts(db_url: str | None, state: str | None, limit: int) -> None:
    """Show the latest alerts: id, state, rule, incident, attempts, last error."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from netmon.store.alerts import Alert
    from netmon.store.db import open_store

    try:
        engine = open_store(db_url or default_db_url())
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    with Session(engine) as session:
        query = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if state:
            query = query.where(Alert.state == state)
        for a in session.scalars(query):
            when = a.created_at.isoformat(timespec="seconds").replace("+00:00", "Z")
            click.echo(
                f"{a.uid}  {when}  {a.state:<10} {a.urgency:<9} {a.rule:<20} incident {a.incident_uid}"
                f"  attempts {a.attempts}" + (f"  last error: {a.last_error}" if a.last_error else "")
            )
    engine.dispose()


@alerts.command()
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
@click.option("--once", is_flag=True, help="Deliver what is due now and exit (otherwise run until stopped).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between outbox checks.")
def send(db_url: str | None, once: bool, poll: float) -> None:
    """Deliver pending alerts by e-mail (SMTP settings from NETMON_SMTP_* and NETMON_MAIL_FROM).

    The proxy already runs a sender; use this where alerts must go out while the proxy is stopped.
    """
    from netmon.alerts.mail import SmtpSettings
    from netmon.alerts.sender import AlertSender
    from netmon.store.db import open_store

    try:
        settings = SmtpSettings.from_env(os.environ)
        engine = open_store(db_url or default_db_url())
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    sender = AlertSender(engine, settings, poll=poll)

    async def main() -> None:
        if once:
            from netmon.alerts.outbox import release_stale_claims

            await asyncio.to_thread(release_stale_claims, engine, sender.token)
            await sender.run_once()
        else:
            await sender.run()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
    click.echo(f"{sender.sent} alert(s) sent, {sender.failed} failed attempt(s)")
    if once and sender.failed:
        raise SystemExit(1)
