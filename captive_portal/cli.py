"""``netmon portal``: run the captive-portal web service."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from netmon.cli.directory_options import directory_config, directory_options
from netmon.config.paths import default_db_url
from netmon.errors import NetmonError

log = logging.getLogger(__name__)


@click.command()
@click.option("--port", type=int, default=8090, show_default=True, help="Port to listen on.")
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104 - devices on the pupils' network must reach it
    show_default=True,
    help="Address to listen on (the gateway's address on the pupils' network).",
)
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
@click.option(
    "--public-url",
    envvar="NETMON_PORTAL_URL",
    default="",
    help="The portal's address as devices see it (RFC 8908 user-portal-url).",
)
@click.option(
    "--policy",
    "policy_dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="NETMON_POLICY",
    default=None,
    help="Policy directory; the AUP is read from its aup/ folder (default: the shipped policy/).",
)
@click.option(
    "--aup",
    "aup_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="AUP directory (default: policy/aup).",
)
@click.option(
    "--ca-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The proxy's CA certificate (default: <confdir>/mitmproxy-ca-cert.pem).",
)
@click.option(
    "--confdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="mitmproxy confdir holding the CA (default: ~/.mitmproxy).",
)
@click.option(
    "--organisation",
    envvar="NETMON_ORGANISATION",
    default="School",
    show_default=True,
    help="School name shown in the iOS profile.",
)
@click.option(
    "--idle-minutes",
    type=click.IntRange(1),
    default=120,
    show_default=True,
    help="Sign a device out after this long without traffic.",
)
@click.option(
    "--max-hours",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Longest a sign-in lasts.",
)
@directory_options
@click.option(
    "--ldap-year-attribute",
    envvar="NETMON_LDAP_YEAR_ATTRIBUTE",
    default="",
    help="Directory attribute holding the year group (roster entries take precedence).",
)
@click.option(
    "--pac",
    "pac_file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="NETMON_PAC_FILE",
    default=None,
    help="PAC file served as /proxy.pac and /wpad.dat (default: deploy/pac/proxy.pac).",
)
@click.option(
    "--trust-proxy",
    is_flag=True,
    help="Behind your own reverse proxy on this host: honour X-Forwarded-For from loopback only.",
)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Worker threads.")
def portal(
    port: int,
    host: str,
    db_url: str | None,
    public_url: str,
    policy_dir: Path | None,
    aup_dir: Path | None,
    ca_cert: Path | None,
    confdir: Path | None,
    organisation: str,
    idle_minutes: int,
    max_hours: float,
    ldap_url: str,
    ldap_user_dn: str,
    ldap_base_dn: str,
    ldap_filter: str,
    ldap_bind_dn: str,
    ldap_start_tls: bool,
    ldap_year_attribute: str,
    pac_file: Path | None,
    trust_proxy: bool,
    threads: int,
) -> None:
    """Run the captive portal (AUP, sign-in, CA download, RFC 8908 API).

    Secrets come from the environment: NETMON_PORTAL_SECRET (cookie key) and NETMON_LDAP_BIND_PASSWORD.
    """
    from netmon_portal.app import PortalConfig, create_app
    from waitress.server import create_server

    from netmon.store.db import upgrade

    url = db_url or default_db_url()
    directory = directory_config(
        ldap_url, ldap_user_dn, ldap_base_dn, ldap_filter, ldap_bind_dn, ldap_start_tls, ldap_year_attribute
    )
    ca = ca_cert or (confdir or Path("~/.mitmproxy").expanduser()) / "mitmproxy-ca-cert.pem"
    config = PortalConfig(
        db_url=url,
        aup_dir=aup_dir or (policy_dir / "aup" if policy_dir else None),
        public_url=public_url,
        ca_cert=ca,
        organisation=organisation,
        idle=timedelta(minutes=idle_minutes),
        max_length=timedelta(hours=max_hours),
        directory=directory,
        secret_key=os.environ.get("NETMON_PORTAL_SECRET", ""),
        trust_proxy=trust_proxy,
    )
    if pac_file is not None:
        config.pac_file = pac_file
    try:
        upgrade(url)
        app = create_app(config)
        # waitress: a production WSGI server (threads, request size limits, no debugger); the app
        # already limits bodies to 64 KB. No access log: request lines carry URLs.
        server = create_server(
            app, host=host, port=port, threads=threads, ident="netmon-portal", channel_timeout=30
        )
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    threading.Thread(target=_sync_aup, args=(app.extensions["netmon"]["sync_aup"],), daemon=True).start()
    click.echo(f"netmon portal on http://{host}:{port}/ (store {_display(url)})", err=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _sync_aup(sync: Callable[[], object], interval: float = 2.0) -> None:
    """Publish the AUP version to the store whenever the school edits the AUP files."""
    while True:
        time.sleep(interval)
        try:
            sync()
        except (NetmonError, SQLAlchemyError) as exc:
            log.error("AUP check failed: %s", exc)


def _display(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
