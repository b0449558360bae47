"""``netmon staff add|list|disable|enable|unlock|totp|password|seal|key``: staff accounts of the console.

Passwords are argon2 hashes (never stored or shown in clear), or, for an account added with ``--auth
directory``, checked by a bind to the school's directory (no local password). Roles that see captured
content (dsl, deputy_dsl, pastoral) always get a TOTP second factor; enrolment prints the ``otpauth://``
URI to scan into an authenticator app, and the secret is stored sealed (``netmon.identity.totp``: the key
is NETMON_CONSOLE_KEY or the state directory's console.key, never the database). ``--site`` limits an
account to one school of a trust. Every change is written to the audit trail.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError
from netmon.store.console import CONTENT_ROLES, DIRECTORY_PASSWORD, ROLES, StaffAccount

MIN_PASSWORD = 12
AUTH_KINDS = ("local", "directory")
DB_OPTION = click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")


def _who() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _engine(db_url: str | None):  # type: ignore[no-untyped-def]
    from netmon.store.db import open_store

    try:
        return open_store(db_url or default_db_url())
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.BadParameter(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def _scope(values: tuple[str, ...]) -> list[str]:
    return sorted({part.strip() for value in values for part in value.split(",") if part.strip()})


def _key() -> bytes:
    from netmon.identity.totp import load_key

    try:
        return load_key()
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc


def _enrol(account: StaffAccount, key: bytes) -> str:
    """A new TOTP secret for ``account``, stored sealed; returns the otpauth:// URI (shown once)."""
    from netmon.identity import totp

    secret = totp.new_secret()
    account.totp_secret = totp.seal(secret, account.username, key)
    account.totp_last_step = 0
    return totp.provisioning_uri(secret, account.username)


def _change(
    db_url: str | None,
    username: str,
    action: str,
    apply: Callable[[StaffAccount], object],
    **detail: object,
) -> object:
    """Load USER, apply a change, audit it; ClickException when there is no such account."""
    from netmon.identity.users import normalise_username
    from netmon.store.base import utcnow
    from netmon.store.incidents import audit

    engine = _engine(db_url)
    name = normalise_username(username)
    try:
        with Session(engine) as session, session.begin():
            account = session.scalars(select(StaffAccount).where(StaffAccount.username == name)).one_or_none()
            if account is None:
                raise click.ClickException(f"no staff account {name!r} (see `netmon staff list`)")
            result = apply(account)
            account.updated_at = utcnow()
            audit(
                session, action, actor=_who(), subject=name, site=account.site or "", address="cli", **detail
            )
    finally:
        engine.dispose()
    return result


@click.group()
def staff() -> None:
    """Staff accounts of the console (roles, passwords, TOTP)."""


@staff.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may see and do.")
@click.option(
    "--scope",
    multiple=True,
    help="Year groups or groups a pastoral lead sees (repeat, or separate with commas), e.g. Y9,10B.",
)
@click.option("--name", "display_name", default="", help="Display name.")
@click.option(
    "--auth",
    type=click.Choice(AUTH_KINDS),
    default="local",
    show_default=True,
    help="local: a password kept here (argon2); directory: the school directory checks the password "
    "(an LDAP bind; `netmon console --ldap-url`), no local password. TOTP applies to both.",
)
@click.option(
    "--site",
    default="",
    help="The school of the trust this account sees (its NETMON_SITE); empty: every site (the trust).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--no-totp", is_flag=True, help="No second factor (network_admin and auditor only).")
@DB_OPTION
def add(
    username: str,
    role: str,
    scope: tuple[str, ...],
    display_name: str,
    auth: str,
    site: str,
    password_stdin: bool,
    no_totp: bool,
    db_url: str | None,
) -> None:
    """Add a staff account; prints the otpauth:// URI to enrol its TOTP second factor."""
    from netmon.identity.users import hash_password, normalise_username, valid_username
    from netmon.store.incidents import audit

    name = normalise_username(username)
    if not valid_username(name):
        raise click.BadParameter("letters, digits, '.', '_', '@' and '-' only", param_hint="USERNAME")
    areas = _scope(scope)
    if role == "pastoral" and not areas:
        raise click.BadParameter(
            "a pastoral lead needs --scope (year groups or groups)", param_hint="--scope"
        )
    if areas and role != "pastoral":
        raise click.BadParameter("--scope applies to the pastoral role only", param_hint="--scope")
    if no_totp and role in CONTENT_ROLES:
        raise click.BadParameter(
            f"the {role} role sees captured content and needs TOTP", param_hint="--no-totp"
        )
    site = site.strip()
    if len(site) > 100:
        raise click.BadParameter("at most 100 characters", param_hint="--site")
    if auth == "directory" and password_stdin:
        raise click.BadParameter("a directory account has no local password", param_hint="--password-stdin")
    password_hash = DIRECTORY_PASSWORD if auth == "directory" else hash_password(_password(password_stdin))
    key = None if no_totp else _key()
    engine = _engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            if session.scalars(select(StaffAccount.id).where(StaffAccount.username == name)).first():
                raise click.ClickException(f"staff account {name!r} exists (disable it or pick another name)")
            account = StaffAccount(
                username=name,
                display_name=display_name,
                role=role,
                scope=areas,
                site=site,
                password_hash=password_hash,
                totp_last_step=0,
                disabled=False,
                failed_attempts=0,
            )
            uri = None if key is None else _enrol(account, key)
            session.add(account)
            audit(
                session, "staff.add", actor=_who(), subject=name, address="cli", role=role, scope=areas,
                totp=uri is not None, auth=auth, site=site,
            )  # fmt: skip
    finally:
        engine.dispose()
    where = f", site {site}" if site else ""
    click.echo(f"added {name} ({role}{': ' + ', '.join(areas) if areas else ''}{where}; {auth} password)")
    if uri:
        click.echo("Scan this into an authenticator app (it is shown once):")
        click.echo(uri)


@staff.command("list")
@DB_OPTION
def list_(db_url: str | None) -> None:
    """List staff accounts (never passwords or TOTP secrets)."""
    engine = _engine(db_url)
    try:
        with Session(engine) as session:
            rows = list(session.scalars(select(StaffAccount).order_by(StaffAccount.username)))
    finally:
        engine.dispose()
    from netmon.identity.totp import is_sealed

    click.echo(
        f"{'USERNAME':20} {'ROLE':14} {'AUTH':9} {'TOTP':6} {'STATE':9} {'LAST SIGN-IN':17} {'SITE':12} SCOPE"
    )
    for a in rows:
        state = "disabled" if a.disabled else ("locked" if a.locked_until else "active")
        last = a.last_signin_at.strftime("%Y-%m-%d %H:%M") if a.last_signin_at else "-"
        totp = ("yes" if is_sealed(a.totp_secret) else "plain") if a.totp_secret else "no"
        click.echo(
            f"{a.username:20} {a.role:14} {'directory' if a.uses_directory else 'local':9} {totp:6} "
            f"{state:9} {last:17} {a.site or '(trust)':12} {', '.join(a.scope or []) or '-'}"
        )


@staff.command("disable")
@click.argument("username")
@DB_OPTION
def disable(username: str, db_url: str | None) -> None:
    """Disable an account: it cannot sign in and its open sessions end at their next request."""
    _change(db_url, username, "staff.disable", lambda a: setattr(a, "disabled", True))
    click.echo(f"disabled {username}")


@staff.command("enable")
@click.argument("username")
@DB_OPTION
def enable(username: str, db_url: str | None) -> None:
    """Enable a disabled account."""
    _change(db_url, username, "staff.enable", lambda a: setattr(a, "disabled", False))
    click.echo(f"enabled {username}")


@staff.command("unlock")
@click.argument("username")
@DB_OPTION
def unlock(username: str, db_url: str | None) -> None:
    """Clear a lockout after too many failed sign-ins."""

    def apply(account: StaffAccount) -> None:
        account.failed_attempts = 0
        account.locked_until = None

    _change(db_url, username, "staff.unlock", apply)
    click.echo(f"unlocked {username}")


@staff.command("totp")
@click.argument("username")
@DB_OPTION
def totp(username: str, db_url: str | None) -> None:
    """Enrol a new TOTP secret (a lost phone); prints the new otpauth:// URI."""
    key = _key()
    uri = _change(db_url, username, "staff.totp", lambda a: _enrol(a, key))
    click.echo(str(uri))


@staff.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@DB_OPTION
def password(username: str, password_stdin: bool, db_url: str | None) -> None:
    """Set a new local password (a directory account becomes a local one)."""
    from netmon.identity.users import hash_password

    new_hash = hash_password(_password(password_stdin))
    _change(db_url, username, "staff.password", lambda a: setattr(a, "password_hash", new_hash), auth="local")
    click.echo(f"password set for {username} (local password)")


@staff.command("directory")
@click.argument("username")
@DB_OPTION
def directory(username: str, db_url: str | None) -> None:
    """Let the school directory check USER's password from now on (its local password is removed)."""
    _change(
        db_url, username, "staff.password", lambda a: setattr(a, "password_hash", DIRECTORY_PASSWORD),
        auth="directory",
    )  # fmt: skip
    click.echo(f"{username} signs in with the school directory's password")


@staff.command("site")
@click.argument("username")
@click.argument("site")
@DB_OPTION
def site_(username: str, site: str, db_url: str | None) -> None:
    """Move USER to the school SITE of the trust ('' for the whole trust, the trust's lead)."""
    site = site.strip()
    if len(site) > 100:
        raise click.BadParameter("at most 100 characters", param_hint="SITE")
    _change(db_url, username, "staff.site", lambda a: setattr(a, "site", site), to=site)
    click.echo(f"{username} now sees {'site ' + site if site else 'every site of the trust'}")


@staff.command("seal")
@DB_OPTION
def seal(db_url: str | None) -> None:
    """Seal every TOTP secret still stored plain (from before sealing) with the console key."""
    from netmon.identity import totp
    from netmon.store.incidents import audit

    key = _key()
    engine = _engine(db_url)
    try:
        with Session(engine) as session, session.begin():
            plain = [
                a for a in session.scalars(select(StaffAccount).where(StaffAccount.totp_secret.is_not(None)))
                if not totp.is_sealed(a.totp_secret)
            ]  # fmt: skip
            for account in plain:
                assert account.totp_secret is not None
                account.totp_secret = totp.seal(account.totp_secret, account.username, key)
                audit(
                    session, "staff.totp.seal", actor=_who(), subject=account.username,
                    site=account.site or "", address="cli",
                )  # fmt: skip
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"sealed {len(plain)} TOTP secret{'s' if len(plain) != 1 else ''}")


@staff.command("key")
def key() -> None:
    """Print a new random console key for NETMON_CONSOLE_KEY (for the environment file; keep it secret).

    Secrets sealed with the old key then need `netmon staff totp` again."""
    from netmon.identity.totp import new_key_text

    click.echo(new_key_text())
