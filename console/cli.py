"""``netmon console``: run the staff console under waitress (a production WSGI server)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import click

from netmon.config.paths import DEFAULT_LIBRARY_DIR, default_db_url
from netmon.errors import NetmonError


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Keep it off the pupils' network (staff VLAN, or behind a TLS proxy).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8070, show_default=True, help="Port.")
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Worker threads.")
@click.option(
    "--idle-minutes", type=click.IntRange(1), default=15, show_default=True, help="Sign out after idling."
)
@click.option("--trust-proxy", is_flag=True, help="Behind your own TLS reverse proxy: honour X-Forwarded-*.")
@click.option(
    "--library",
    "library_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=DEFAULT_LIBRARY_DIR,
    show_default="the shipped library",
    help="The phrase library the proxy uses (its netmon_library).",
)
@click.option(
    "--overlay",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="NETMON_LIBRARY_OVERLAY",
    default=None,
    help="The school's overlay directory (the proxy's netmon_library_overlay): approved library "
    "suggestions are written here. Default: NETMON_LIBRARY_OVERLAY.",
)
@click.option(
    "--ldap-url",
    envvar="NETMON_LDAP_URL",
    default="",
    help="ldap:// or ldaps:// URL of the school directory that checks `--auth directory` staff passwords.",
)
@click.option(
    "--ldap-user-dn",
    envvar="NETMON_LDAP_USER_DN",
    default="",
    help="Bind DN template, e.g. 'uid={username},ou=staff,dc=school,dc=uk' or '{username}@school.local'.",
)
@click.option(
    "--ldap-base-dn", envvar="NETMON_LDAP_BASE_DN", default="", help="Search base (search-then-bind)."
)
@click.option(
    "--ldap-filter",
    envvar="NETMON_LDAP_FILTER",
    default="(uid={username})",
    show_default=True,
    help="Search filter (AD: '(sAMAccountName={username})').",
)
@click.option(
    "--ldap-bind-dn",
    envvar="NETMON_LDAP_BIND_DN",
    default="",
    help="Service account for searching (its password: NETMON_LDAP_BIND_PASSWORD).",
)
@click.option("--ldap-start-tls", is_flag=True, envvar="NETMON_LDAP_START_TLS", help="Use StartTLS.")
def console(
    host: str,
    port: int,
    db_url: str | None,
    threads: int,
    idle_minutes: int,
    trust_proxy: bool,
    library_dir: Path,
    overlay: Path | None,
    ldap_url: str,
    ldap_user_dn: str,
    ldap_base_dn: str,
    ldap_filter: str,
    ldap_bind_dn: str,
    ldap_start_tls: bool,
) -> None:
    """Run the staff console (triage, incidents, outcomes, audit).

    NETMON_CONSOLE_SECRET (environment) keys the session cookies; without it sessions end on restart.
    TOTP secrets are sealed with NETMON_CONSOLE_KEY, else the key file <state dir>/console.key (made,
    mode 0600, on first use). Add staff with `netmon staff add`.
    """
    from netmon_console.app import ConsoleConfig, create_app
    from waitress import create_server

    from netmon.identity.totp import load_key
    from netmon.identity.users import DirectoryConfig
    from netmon.store.db import upgrade

    if ldap_url and not (ldap_user_dn or ldap_base_dn):
        raise click.BadParameter(
            "give --ldap-user-dn or --ldap-base-dn with --ldap-url", param_hint="--ldap-url"
        )
    directory = (
        DirectoryConfig(
            url=ldap_url,
            user_dn=ldap_user_dn,
            base_dn=ldap_base_dn,
            search_filter=ldap_filter,
            bind_dn=ldap_bind_dn,
            bind_password=os.environ.get("NETMON_LDAP_BIND_PASSWORD", ""),
            start_tls=ldap_start_tls,
        )  # fmt: skip
        if ldap_url
        else None
    )
    url = db_url or default_db_url()
    try:
        key = load_key()  # at start: a key file the service cannot read fails here, not at a sign-in
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    config = ConsoleConfig(
        db_url=url,
        secret_key=os.environ.get("NETMON_CONSOLE_SECRET", ""),
        trust_proxy=trust_proxy,
        idle=timedelta(minutes=idle_minutes),
        library_root=library_dir,
        overlay=overlay,
        directory=directory,
        totp_key=key,
    )
    try:
        upgrade(url)
        app = create_app(config)
        server = create_server(app, host=host, port=port, threads=threads, ident="netmon")
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    logging.getLogger("waitress").setLevel(logging.WARNING)
    click.echo(f"netmon console on http://{host}:{port}/", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
