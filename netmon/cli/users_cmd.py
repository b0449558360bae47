"""``netmon users import FILE``: load the school roster (local accounts and who is pupil or staff)."""

from __future__ import annotations

from pathlib import Path

import click

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError


@click.group()
def users() -> None:
    """Manage pupil and staff accounts used by the captive portal."""


@users.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
def import_(file: Path, db_url: str | None) -> None:
    """Import or update accounts from a roster CSV.

    Header: username,display_name,role,year_group,groups,password. role is pupil or staff; groups are
    separated by ';'; a blank password means the account signs in against the school's directory (LDAP).
    Re-importing updates existing accounts. Bad rows are reported by line and skipped; the exit status is
    then 1.
    """
    from sqlalchemy.orm import Session

    from netmon.identity.users import import_roster
    from netmon.store.db import open_store
    from netmon.store.incidents import audit

    try:
        engine = open_store(db_url or default_db_url())
        with Session(engine) as session, session.begin():
            report = import_roster(session, file)
            audit(
                session,
                "users.import",
                actor="cli",
                subject=file.name,
                created=report.created,
                updated=report.updated,
                bad_rows=len(report.errors),
            )
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    for _line, message in report.errors:
        click.echo(message, err=True)
    click.echo(
        f"{file}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.errors)} bad row(s)"
    )
    if report.errors:
        raise SystemExit(1)


@users.command("list")
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
def list_(db_url: str | None) -> None:
    """List the accounts (never their passwords)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from netmon.store.db import open_store
    from netmon.store.identity import UserAccount

    try:
        engine = open_store(db_url or default_db_url())
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    with Session(engine) as session:
        rows = list(session.scalars(select(UserAccount).order_by(UserAccount.username)))
    from netmon.safe_text import neutralise

    def shown(value: str) -> str:  # names come from rosters and directories: never raw to a terminal
        return neutralise(value, keep_newlines=False)

    click.echo(f"{'USERNAME':20} {'NAME':24} {'ROLE':6} {'YEAR':6} {'SIGN-IN':9} GROUPS")
    for u in rows:
        how = "local" if u.password_hash else "directory"
        click.echo(
            f"{shown(u.username):20} {shown(u.display_name)[:24]:24} {shown(u.role):6} "
            f"{shown(u.year_group or '-'):6} {how:9} {shown(';'.join(u.groups or [])) or '-'}"
        )
