"""``netmon sessions``: who is signed in on which address; ``netmon sessions end USER|IP`` signs out."""

from __future__ import annotations

import ipaddress

import click

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError

_DB_OPTION = click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
_SITE_OPTION = click.option(
    "--site",
    default=None,
    metavar="S",
    help="The site whose sessions these are, in a trust's shared store (default: NETMON_SITE).",
)


def _engine(db_url: str | None, site: str | None):  # type: ignore[no-untyped-def]
    from netmon.store.db import open_store

    try:
        return open_store(db_url or default_db_url(), site=site)
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(invoke_without_command=True)
@_DB_OPTION
@_SITE_OPTION
@click.pass_context
def sessions(ctx: click.Context, db_url: str | None, site: str | None) -> None:
    """List live device sessions (user, address, MAC, since, last seen) of this site."""
    ctx.ensure_object(dict)
    ctx.obj["db_url"] = db_url
    ctx.obj["site"] = site
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy.orm import Session

    from netmon.identity.sessions import SETTING_AUP_VERSION, get_setting, live, open_sessions
    from netmon.store.base import utcnow

    engine = _engine(db_url, site)
    now = utcnow()
    with Session(engine) as session:
        version = get_setting(session, SETTING_AUP_VERSION)
        rows = [r for r in open_sessions(session, now) if live(r, now, version)]
    if not rows:
        click.echo("no devices signed in")
        return
    from netmon.safe_text import neutralise

    def shown(value: str) -> str:  # user names come from rosters and directories: never raw to a terminal
        return neutralise(value, keep_newlines=False)

    click.echo(f"{'IP':39} {'USER':20} {'ROLE':6} {'YEAR':6} {'MAC':17} {'SINCE (UTC)':16} LAST SEEN (UTC)")
    for r in rows:
        click.echo(
            f"{shown(r.ip):39} {shown(r.username):20} {shown(r.role):6} {shown(r.year_group or '-'):6} "
            f"{shown(r.mac or '-'):17} {r.started_at:%Y-%m-%d %H:%M} {r.last_seen:%Y-%m-%d %H:%M:%S}"
        )


@sessions.command()
@click.argument("target")
@_DB_OPTION
@_SITE_OPTION
@click.pass_context
def end(ctx: click.Context, target: str, db_url: str | None, site: str | None) -> None:
    """Sign out a user (all their devices) or the device at an IP address, at this site."""
    from sqlalchemy.orm import Session

    from netmon.identity.sessions import end_sessions
    from netmon.store.incidents import audit

    engine = _engine(db_url or ctx.obj.get("db_url"), site if site is not None else ctx.obj.get("site"))
    try:
        ipaddress.ip_address(target.removeprefix("::ffff:"))
        by_ip = True
    except ValueError:
        by_ip = False
    with Session(engine) as session, session.begin():
        if by_ip:
            count = end_sessions(session, ip=target, reason="ended-by-admin")
        else:
            count = end_sessions(session, username=target, reason="ended-by-admin")
        audit(session, "sessions.end", actor="cli", subject=target, ended=count)
    if count == 0:
        raise click.ClickException(f"no open session for {target}")
    click.echo(f"ended {count} session(s) for {target}")
