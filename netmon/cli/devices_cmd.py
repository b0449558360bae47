"""``netmon devices``: school-owned devices monitored off site through an always-on WireGuard tunnel.

``enrol`` creates a peer with a fixed tunnel address and prints the client configuration and its QR code
(the private key is shown this once and never stored); ``list``, ``revoke`` and ``rotate`` manage them;
``profile --apple`` writes an on-demand .mobileconfig; ``gateway-config`` writes the gateway's interface
configuration with every peer. Changes reach the running interface at once (``wg set``) when it exists.
Settings come from the environment (``NETMON_WG_*``, see docs/offsite.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError

_DB_OPTION = click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")


def _engine(ctx: click.Context, db_url: str | None) -> Any:
    from netmon.store.db import open_store

    try:
        return open_store(db_url or (ctx.obj or {}).get("db_url") or default_db_url())
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc


def _settings() -> Any:
    from netmon.identity.wireguard import TunnelSettings

    try:
        return TunnelSettings.from_env()
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc


def _show_issued(issued: Any, png: Path | None, conf: Path | None, qr: bool) -> None:
    import segno

    from netmon.identity.wireguard import write_private

    click.echo(f"# {issued.name} ({issued.username}) {issued.address_v4} {issued.address_v6 or ''}".rstrip())
    click.echo("# The private key below is shown once and is not stored: import it now.")
    click.echo(issued.client_config, nl=False)
    code = segno.make(issued.client_config, error="l", micro=False)
    if qr:
        code.terminal(out=sys.stdout, compact=True)
    if png is not None:
        code.save(str(png), kind="png", scale=6, border=4)
        os.chmod(png, 0o600)
        click.echo(f"QR code written to {png}", err=True)
    if conf is not None:
        write_private(conf, issued.client_config)
        click.echo(f"client configuration written to {conf}", err=True)


def _report(applied: Any, what: str) -> None:
    if applied.live:
        click.echo(f"{what}: applied to the running interface", err=True)
    elif applied.problem:
        click.echo(f"warning: {what} is stored but NOT applied: {applied.problem}", err=True)
    else:
        click.echo(f"{what}: stored (no WireGuard interface here to apply it to)", err=True)
    if applied.config_written:
        click.echo(f"gateway configuration rewritten: {applied.config_written}", err=True)


@click.group()
@_DB_OPTION
@click.pass_context
def devices(ctx: click.Context, db_url: str | None) -> None:
    """School-owned devices monitored off site through an always-on WireGuard tunnel."""
    ctx.ensure_object(dict)
    ctx.obj["db_url"] = db_url


_OUTPUTS = [
    click.option(
        "-o", "--png", type=click.Path(dir_okay=False, path_type=Path), help="Write the QR code as PNG."
    ),
    click.option(
        "--conf",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the client configuration (0600).",
    ),
    click.option("--no-qr", is_flag=True, help="Do not draw the QR code in the terminal."),
]


def _outputs(func: Any) -> Any:
    for option in reversed(_OUTPUTS):
        func = option(func)
    return func


@devices.command()
@click.argument("name")
@click.option("--user", "username", required=True, help="The user the device is issued to (in the roster).")
@click.option("--site", default=None, help="Site or school the device belongs to (default: NETMON_SITE).")
@click.option("--aup-version", default=None, help="AUP version accepted (default: the current one).")
@click.option("--aup-accepted", is_flag=True, help="Confirm the user accepted the AUP for this device.")
@_outputs
@click.pass_context
def enrol(
    ctx: click.Context,
    name: str,
    username: str,
    site: str | None,
    aup_version: str | None,
    aup_accepted: bool,
    png: Path | None,
    conf: Path | None,
    no_qr: bool,
) -> None:
    """Enrol device NAME for --user: a WireGuard peer, a fixed tunnel address; prints config and QR."""
    from sqlalchemy.orm import Session

    from netmon.identity.enrolment import apply_to_gateway, current_aup_version
    from netmon.identity.enrolment import enrol as do_enrol
    from netmon.identity.wireguard import allowed_ips, public_key_of

    settings = _settings()
    engine = _engine(ctx, None)
    try:
        with Session(engine) as session, session.begin():
            version = aup_version or current_aup_version(session)
            if not aup_accepted:
                raise click.ClickException(
                    f"confirm that {username} accepted the AUP (version {version}) for this device: "
                    "add --aup-accepted"
                )
            issued = do_enrol(
                session,
                settings,
                name=name,
                username=username,
                site=site if site is not None else os.environ.get("NETMON_SITE", ""),
                aup_version=version,
                gateway_public=public_key_of(settings.gateway_private_key()),
            )
        with Session(engine) as session:
            applied = apply_to_gateway(
                session,
                settings,
                add=[(issued.public_key, allowed_ips(issued.address_v4, issued.address_v6))],
            )
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    _show_issued(issued, png, conf, not no_qr)
    _report(applied, f"device {name} enrolled")


@devices.command()
@click.argument("name")
@_outputs
@click.pass_context
def rotate(ctx: click.Context, name: str, png: Path | None, conf: Path | None, no_qr: bool) -> None:
    """New keys for device NAME (same address); its old configuration stops working at once."""

    settings = _settings()
    engine = _engine(ctx, None)
    issued, applied = _rotate_and_apply(settings, engine, name)
    _show_issued(issued, png, conf, not no_qr)
    _report(applied, f"device {name} rotated")


@devices.command()
@click.argument("name")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.pass_context
def revoke(ctx: click.Context, name: str, reason: str) -> None:
    """Revoke device NAME: its peer is removed from the gateway at once and its address names no one."""
    from sqlalchemy.orm import Session

    from netmon.identity.enrolment import apply_to_gateway
    from netmon.identity.enrolment import revoke as do_revoke

    settings = _settings()
    engine = _engine(ctx, None)
    try:
        with Session(engine) as session, session.begin():
            key = do_revoke(session, name=name, reason=reason).public_key
        with Session(engine) as session:
            applied = apply_to_gateway(session, settings, remove=[key])
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {name}")
    _report(applied, f"device {name} revoked")
    if applied.problem:
        raise SystemExit(1)


@devices.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked devices.")
@click.pass_context
def list_(ctx: click.Context, show_all: bool) -> None:
    """Enrolled devices: name, user, site, tunnel address, created, last handshake."""
    from sqlalchemy.orm import Session

    from netmon.identity.enrolment import list_devices, record_handshakes
    from netmon.identity.wireguard import WgControl, WireGuardError

    settings = _settings()
    engine = _engine(ctx, None)
    control = WgControl(settings.interface)
    with Session(engine) as session, session.begin():
        if control.exists():
            try:
                record_handshakes(session, control.latest_handshakes())
            except WireGuardError as exc:
                click.echo(f"warning: last handshakes not read: {exc}", err=True)
        rows = list_devices(session, include_revoked=show_all)
        if not rows:
            click.echo("no devices enrolled")
            return
        click.echo(
            f"{'NAME':20} {'USER':20} {'SITE':12} {'ADDRESS':15} {'CREATED (UTC)':16} "
            f"{'LAST SEEN (UTC)':16} STATE"
        )
        for r in rows:
            seen = f"{r.last_seen:%Y-%m-%d %H:%M}" if r.last_seen else "never"
            state = f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active"
            click.echo(
                f"{r.name:20} {r.username:20} {r.site or '-':12} {r.address_v4:15} "
                f"{r.created_at:%Y-%m-%d %H:%M} {seen:16} {state}"
            )


@devices.command()
@click.argument("name")
@click.option("--apple", is_flag=True, help="An Apple .mobileconfig (the only kind so far; required).")
@click.option("--macos", is_flag=True, help="For a Mac (default: iPad/iPhone).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--trusted-ssid", multiple=True, help="Wi-Fi name where the tunnel stays down (the school's).")
@click.option("--organisation", default="School", show_default=True, help="Name shown in the profile.")
@click.pass_context
def profile(
    ctx: click.Context,
    name: str,
    apple: bool,
    macos: bool,
    output: Path,
    trusted_ssid: tuple[str, ...],
    organisation: str,
) -> None:
    """Write an on-demand (always-on) VPN profile for NAME; issues NEW keys (private keys are not kept)."""

    from netmon.identity.mobileconfig import apple_profile
    from netmon.identity.wireguard import write_private

    if not apple:
        raise click.ClickException("say which kind of profile: --apple (iPad, iPhone; --macos for a Mac)")
    settings = _settings()
    engine = _engine(ctx, None)
    issued, applied = _rotate_and_apply(settings, engine, name)
    data = apple_profile(
        device=name,
        username=issued.username,
        wg_quick=issued.client_config,
        endpoint=settings.endpoint,
        organisation=organisation,
        platform="macos" if macos else "ios",
        trusted_ssids=trusted_ssid,
    )
    write_private(output, data.decode("utf-8"))
    click.echo(f"profile for {name} written to {output} (new keys: the previous configuration stops working)")
    _report(applied, f"device {name} rotated")


@devices.command(name="gateway-config")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (0600).")
@click.option("--apply", "apply_", is_flag=True, help="Then `wg syncconf` the running interface with it.")
@click.option("--up", is_flag=True, help="Also give the interface the pool's first address and bring it up.")
@click.pass_context
def gateway_config(ctx: click.Context, output: Path | None, apply_: bool, up: bool) -> None:
    """The gateway's WireGuard interface configuration with every enrolled peer (wg setconf format)."""
    from sqlalchemy.orm import Session

    from netmon.identity.enrolment import gateway_text
    from netmon.identity.wireguard import WgControl, write_private

    settings = _settings()
    engine = _engine(ctx, None)
    try:
        with Session(engine) as session:
            text = gateway_text(session, settings)
        if output is None:
            if apply_ or up:
                raise click.ClickException("--apply and --up need -o FILE (wg syncconf reads a file)")
            click.echo(text, nl=False)
            return
        write_private(output, text)
        if apply_ or up:
            control = WgControl(settings.interface)
            control.syncconf(output)
            if up:
                prefix_v4 = settings.pool_v4.prefixlen
                addresses = [f"{settings.gateway_v4}/{prefix_v4}"]
                if settings.pool_v6 is not None:
                    addresses.append(f"{settings.gateway_v6}/{settings.pool_v6.prefixlen}")
                control.up(addresses)
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"gateway configuration written to {output}" + (" and applied" if apply_ or up else ""), err=True
    )


def _rotate_and_apply(settings: Any, engine: Any, name: str) -> tuple[Any, Any]:
    """New keys for device ``name`` (the old ones stop working), applied to the running gateway."""
    from sqlalchemy.orm import Session

    from netmon.identity.enrolment import apply_to_gateway
    from netmon.identity.enrolment import rotate as do_rotate
    from netmon.identity.wireguard import allowed_ips, public_key_of

    try:
        with Session(engine) as session, session.begin():
            issued, old = do_rotate(
                session, settings, name=name, gateway_public=public_key_of(settings.gateway_private_key())
            )
        with Session(engine) as session:
            applied = apply_to_gateway(
                session,
                settings,
                remove=[old],
                add=[(issued.public_key, allowed_ips(issued.address_v4, issued.address_v6))],
            )
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    return issued, applied
