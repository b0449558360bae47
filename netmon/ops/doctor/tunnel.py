"""Doctor check of the WireGuard tunnel for school-owned devices off site (docs/offsite.md): the
interface is up, listens on the configured port, and the enrolled devices have completed handshakes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from netmon.errors import NetmonError
from netmon.ops.doctor.base import FAIL, OK, WARN, Check, Settings

QUIET_DAYS = 7


def check_tunnel(s: Settings) -> Check:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from netmon.identity.wireguard import TunnelSettings, WgControl
    from netmon.store.db import make_engine
    from netmon.store.devices import EnrolledDevice

    try:
        engine = make_engine(s.db_url)
        try:
            with Session(engine) as session:
                keys = set(
                    session.scalars(
                        select(EnrolledDevice.public_key).where(EnrolledDevice.revoked_at.is_(None))
                    )
                )
        finally:
            engine.dispose()
    except (SQLAlchemyError, NetmonError):
        return Check("tunnel", WARN, "cannot read the enrolled devices (see the database check)")
    if not keys:
        return Check("tunnel", OK, "no school devices enrolled: the off-site tunnel is not in use")
    try:
        tunnel = TunnelSettings.from_env(os.environ)
    except NetmonError as exc:
        return Check("tunnel", FAIL, str(exc), "fix the NETMON_WG_* setting in /etc/netmon/netmon.env")
    wg = WgControl(tunnel.interface)
    fix = "systemctl status netmon-wireguard; journalctl -u netmon-wireguard -e"
    if not wg.exists():
        return Check(
            "tunnel", FAIL, f"{len(keys)} devices enrolled but interface {tunnel.interface} is missing", fix
        )
    try:
        port = wg.listen_port()
        seen = wg.latest_handshakes()
    except NetmonError as exc:
        return Check("tunnel", FAIL, f"cannot read interface {tunnel.interface}: {exc}", fix)
    if port != str(tunnel.listen_port):
        return Check(
            "tunnel",
            FAIL,
            f"{tunnel.interface} listens on UDP {port}, but devices are configured for {tunnel.listen_port}",
            "netmon devices gateway-config --apply (or correct NETMON_WG_PORT)",
        )
    recent = datetime.now(UTC) - timedelta(days=QUIET_DAYS)
    active = sum(1 for key, when in seen.items() if key in keys and when >= recent)
    line = f"{tunnel.interface} on UDP {port}: {active} of {len(keys)} enrolled devices seen in {QUIET_DAYS}d"
    if active == 0:
        return Check(
            "tunnel", WARN, line, "check the port forward to the gateway and the devices' VPN profiles"
        )
    return Check("tunnel", OK, line)
