"""Enrolling school-owned devices as WireGuard peers: enrol, rotate, revoke, and the gateway's peer set.

Each device gets a fixed tunnel address from the pool (``NETMON_WG_POOL_V4``, and the same offset in
``NETMON_WG_POOL_V6`` when set), so its address names it, and the user it is issued to, for as long as it
is enrolled. Addresses of revoked devices are handed out again only when the pool has no fresh one left
(oldest revocation first), so old incidents stay unambiguous for as long as possible.

Enrolment records the user's acceptance of the AUP (an ``aup_acceptances`` row, as the portal writes one
at sign-in): off site there is no portal and no prompt. These functions only change the store (the caller
commits); applying the change to the running interface is :func:`apply_to_gateway`'s job.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.errors import NetmonError
from netmon.identity.sessions import get_setting, set_setting
from netmon.identity.users import normalise_username
from netmon.identity.wireguard import (
    TunnelSettings,
    WgControl,
    WireGuardError,
    allowed_ips,
    client_config,
    gateway_config,
    generate_keypair,
    write_private,
)
from netmon.store.base import utcnow
from netmon.store.devices import EnrolledDevice
from netmon.store.identity import AupAcceptance, UserAccount
from netmon.store.incidents import audit

log = logging.getLogger(__name__)

SETTING_DEVICES_CHANGED = "devices_changed"  # a new value whenever a device is enrolled, rotated or revoked
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DeviceError(NetmonError):
    """An enrolment request that cannot be done as asked (unknown user, name taken, pool full ...)."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A device's new credentials: the only moment its private key exists outside the device."""

    name: str
    username: str
    address_v4: str
    address_v6: str | None
    public_key: str
    private_key: str
    client_config: str


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise DeviceError(f"device name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (e.g. lt-0142)")
    return name


def active_device(session: Session, name: str) -> EnrolledDevice | None:
    query = select(EnrolledDevice).where(EnrolledDevice.name == name, EnrolledDevice.revoked_at.is_(None))
    return session.scalars(query).first()


def list_devices(session: Session, *, include_revoked: bool = False) -> list[EnrolledDevice]:
    query = select(EnrolledDevice).order_by(EnrolledDevice.name, EnrolledDevice.id)
    if not include_revoked:
        query = query.where(EnrolledDevice.revoked_at.is_(None))
    return list(session.scalars(query))


def mark_changed(session: Session) -> None:
    """Tell the proxy's device directory to reload (a cheap marker it polls)."""
    set_setting(session, SETTING_DEVICES_CHANGED, utcnow().isoformat())


def allocate(session: Session, settings: TunnelSettings) -> tuple[str, str | None]:
    """The next free tunnel address (IPv4, and IPv6 at the same offset when a v6 pool is set)."""
    rows = session.execute(select(EnrolledDevice.address_v4, EnrolledDevice.revoked_at)).all()
    active = {a for a, revoked in rows if revoked is None}
    revoked: dict[str, datetime] = {}
    for address, when in rows:
        if when is not None and address not in active:
            revoked[address] = min(when, revoked.get(address, when))
    pool = settings.pool_v4
    gateway = ipaddress.IPv4Address(settings.gateway_v4)
    chosen: ipaddress.IPv4Address | None = None
    for host in pool.hosts():
        if host != gateway and str(host) not in active and str(host) not in revoked:
            chosen = host
            break
    if chosen is None and revoked:
        chosen = ipaddress.IPv4Address(min(revoked, key=lambda a: revoked[a]))
    if chosen is None:
        raise DeviceError(f"the tunnel pool {pool} is full: revoke devices or widen NETMON_WG_POOL_V4")
    v6 = None
    if settings.pool_v6 is not None:
        offset = int(chosen) - int(pool.network_address)
        if offset >= settings.pool_v6.num_addresses:
            raise DeviceError(f"NETMON_WG_POOL_V6 {settings.pool_v6} is smaller than the IPv4 pool")
        v6 = str(settings.pool_v6.network_address + offset)
    return str(chosen), v6


def _issue(settings: TunnelSettings, row: EnrolledDevice, gateway_public: str) -> Issued:
    private, public = generate_keypair()
    row.public_key = public
    config = client_config(
        settings,
        private_key=private,
        address_v4=row.address_v4,
        address_v6=row.address_v6,
        gateway_public=gateway_public,
    )
    return Issued(row.name, row.username, row.address_v4, row.address_v6, public, private, config)


def enrol(
    session: Session,
    settings: TunnelSettings,
    *,
    name: str,
    username: str,
    site: str,
    aup_version: str,
    gateway_public: str,
    actor: str = "cli",
    now: datetime | None = None,
) -> Issued:
    """Create a peer for ``name`` issued to ``username`` and record the AUP acceptance made at enrolment."""
    now = now or utcnow()
    check_name(name)
    settings.checked_endpoint()
    username = normalise_username(username)
    user = session.scalars(select(UserAccount).where(UserAccount.username == username)).first()
    if user is None:
        raise DeviceError(f"no user {username!r} in the roster: import it first (netmon users import)")
    if active_device(session, name) is not None:
        raise DeviceError(f"device {name!r} is already enrolled: rotate its key or revoke it first")
    address_v4, address_v6 = allocate(session, settings)
    row = EnrolledDevice(
        name=name,
        username=username,
        site=site,
        public_key="",
        address_v4=address_v4,
        address_v6=address_v6,
        aup_version=aup_version,
        aup_accepted_at=now,
        created_at=now,
        key_created_at=now,
    )
    issued = _issue(settings, row, gateway_public)
    session.add(row)
    session.add(
        AupAcceptance(
            time=now,
            username=username,
            aup_version=aup_version,
            language="",
            ip=address_v4,
            mac=None,
            user_agent=f"enrolled device {name} (netmon devices enrol)",
        )
    )
    audit(session, "devices.enrol", actor=actor, subject=name, user=username, address=address_v4, site=site)
    mark_changed(session)
    return issued


def rotate(
    session: Session, settings: TunnelSettings, *, name: str, gateway_public: str, actor: str = "cli"
) -> tuple[Issued, str]:
    """New keys for an enrolled device (same address); returns them and the old public key."""
    settings.checked_endpoint()
    row = active_device(session, name)
    if row is None:
        raise DeviceError(f"no enrolled device {name!r} (netmon devices list)")
    old = row.public_key
    issued = _issue(settings, row, gateway_public)
    row.key_created_at = utcnow()
    audit(session, "devices.rotate", actor=actor, subject=name, user=row.username)
    mark_changed(session)
    return issued, old


def revoke(session: Session, *, name: str, reason: str = "", actor: str = "cli") -> EnrolledDevice:
    """Revoke a device: its key and address no longer identify anyone and its peer goes from the gateway."""
    row = active_device(session, name)
    if row is None:
        raise DeviceError(f"no enrolled device {name!r} (netmon devices list)")
    row.revoked_at = utcnow()
    row.revoke_reason = reason[:200] or None
    audit(session, "devices.revoke", actor=actor, subject=name, user=row.username, reason=reason)
    mark_changed(session)
    return row


def record_handshakes(session: Session, handshakes: Mapping[str, datetime]) -> int:
    """Copy the gateway's latest handshakes into ``last_seen``; returns how many rows moved on."""
    changed = 0
    for row in list_devices(session):
        seen = handshakes.get(row.public_key)
        if seen is not None and (row.last_seen is None or seen > row.last_seen):
            row.last_seen = seen
            changed += 1
    return changed


def gateway_peers(session: Session) -> list[tuple[str, str, str]]:
    """(name, public key, allowed IPs) of every device not revoked, in a stable order."""
    return [(r.name, r.public_key, allowed_ips(r.address_v4, r.address_v6)) for r in list_devices(session)]


def gateway_text(session: Session, settings: TunnelSettings) -> str:
    return gateway_config(settings.gateway_private_key(), settings.listen_port, gateway_peers(session))


@dataclass(frozen=True, slots=True)
class Applied:
    """What :func:`apply_to_gateway` did, for the command's output."""

    live: bool  # the running interface was changed
    config_written: Path | None
    problem: str | None = None


def apply_to_gateway(
    session: Session,
    settings: TunnelSettings,
    *,
    add: Sequence[tuple[str, str]] = (),
    remove: Sequence[str] = (),
    control: WgControl | None = None,
) -> Applied:
    """Apply a change at once: ``wg set`` on the running interface, then rewrite NETMON_WG_CONFIG if set.

    ``add``: (public key, allowed IPs); ``remove``: public keys. Call after the store change is committed.
    """
    control = control or WgControl(settings.interface)
    live = False
    problem = None
    if control.exists():
        try:
            for public_key in remove:
                control.remove_peer(public_key)
            for public_key, allowed in add:
                control.set_peer(public_key, allowed)
            live = True
        except WireGuardError as exc:
            problem = str(exc)
            log.error("wireguard: %s", exc)
    written = None
    if settings.config_file is not None:
        write_private(settings.config_file, gateway_text(session, settings))
        written = settings.config_file
    return Applied(live, written, problem)


def current_aup_version(session: Session, policy_dir: Path | None = None) -> str:
    """The AUP version devices accept at enrolment: the portal's current one, else the policy's."""
    from netmon.identity.aup import DEFAULT_AUP_DIR, load_aup
    from netmon.identity.sessions import SETTING_AUP_VERSION

    stored = get_setting(session, SETTING_AUP_VERSION)
    if stored:
        return stored
    return load_aup(policy_dir / "aup" if policy_dir else DEFAULT_AUP_DIR).version
