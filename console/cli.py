"""``netmon console``: run the staff console under waitress (a production WSGI server)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import click

from netmon.cli.directory_options import directory_config, directory_options
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
@directory_options
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
    from netmon.store.db import upgrade

    directory = directory_config(
        ldap_url, ldap_user_dn, ldap_base_dn, ldap_filter, ldap_bind_dn, ldap_start_tls
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
