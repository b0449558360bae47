"""Identity without the portal: a tunnel address names its enrolled device and the user it is issued to.

Off site a school-owned device reaches the proxy only through its WireGuard tunnel, whose source address
the gateway fixes per peer (a peer can send only from its own AllowedIPs). So the address alone names the
device, with no captive portal and no AUP prompt (acceptance was recorded at enrolment), and everything
seen from it is marked ``off_site``.

The proxy never reads the store per request: :class:`DeviceDirectory` reloads an immutable
:class:`DeviceSnapshot` in a background thread when ``netmon devices`` marks a change (and every
``interval`` seconds to pick up roster changes), and hooks only call ``snapshot.lookup(ip)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from netmon.identity.enrolment import SETTING_DEVICES_CHANGED
from netmon.identity.sessions import get_setting, normalise_ip
from netmon.store.devices import EnrolledDevice
from netmon.store.identity import UserAccount

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who is behind a tunnel address."""

    device: str
    user: str
    display_name: str
    role: str
    year_group: str | None
    groups: tuple[str, ...]
    site: str
    address: str
    off_site: bool = True

    def as_metadata(self) -> dict[str, object]:
        """The ``flow.metadata["netmon.user"]`` dict: the session's keys plus device and off_site."""
        return {
            "user": self.user,
            "role": self.role,
            "year_group": self.year_group,
            "groups": list(self.groups),
            "mac": None,
            "device": self.device,
            "site": self.site,
            "off_site": self.off_site,
        }


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """Tunnel address -> identity of every device not revoked; swapped by one reference."""

    by_address: Mapping[str, DeviceIdentity] = field(default_factory=lambda: MappingProxyType({}))
    marker: str | None = None
    loaded_at: float = 0.0
    ok: bool = False

    def lookup(self, ip: str) -> DeviceIdentity | None:
        return self.by_address.get(normalise_ip(ip))


def _identity(row: EnrolledDevice, user: UserAccount | None, address: str) -> DeviceIdentity:
    return DeviceIdentity(
        device=row.name,
        user=row.username,
        display_name=user.display_name if user else "",
        role=user.role if user else "pupil",
        year_group=user.year_group if user else None,
        groups=tuple(user.groups or ()) if user else (),
        site=row.site,
        address=address,
    )


def _rows(session: Session, address: str | None = None) -> list[tuple[EnrolledDevice, UserAccount | None]]:
    query = (
        select(EnrolledDevice, UserAccount)
        .outerjoin(UserAccount, UserAccount.username == EnrolledDevice.username)
        .where(EnrolledDevice.revoked_at.is_(None))
    )
    if address is not None:
        query = query.where((EnrolledDevice.address_v4 == address) | (EnrolledDevice.address_v6 == address))
    return [(device, user) for device, user in session.execute(query).all()]


def device_for_address(session: Session, address: str) -> DeviceIdentity | None:
    """The enrolled device (not revoked) whose tunnel address is ``address``, straight from the store."""
    address = normalise_ip(address)
    for row, user in _rows(session, address):
        return _identity(row, user, address)
    return None


def load_device_snapshot(session: Session) -> DeviceSnapshot:
    table: dict[str, DeviceIdentity] = {}
    for row, user in _rows(session):
        table[row.address_v4] = _identity(row, user, row.address_v4)
        if row.address_v6:
            table[normalise_ip(row.address_v6)] = _identity(row, user, normalise_ip(row.address_v6))
    return DeviceSnapshot(
        by_address=MappingProxyType(table),
        marker=get_setting(session, SETTING_DEVICES_CHANGED),
        loaded_at=time.time(),
        ok=True,
    )


class DeviceDirectory:
    """Keeps a :class:`DeviceSnapshot` fresh from the store in a background thread (fails open: empty)."""

    def __init__(self, engine: Engine, *, poll: float = 2.0, interval: float = 60.0) -> None:
        self.engine = engine
        self.poll = poll  # seconds between looks at the change marker
        self.interval = interval  # seconds between full reloads regardless (roster changes)
        self.snapshot = DeviceSnapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, *, force: bool = True) -> DeviceSnapshot:
        """One refresh; keeps the old snapshot when the store cannot be read."""
        try:
            with Session(self.engine) as session:
                stale = time.time() - self.snapshot.loaded_at >= self.interval
                if not force and not stale and self.snapshot.ok:
                    if get_setting(session, SETTING_DEVICES_CHANGED) == self.snapshot.marker:
                        return self.snapshot
                self.snapshot = load_device_snapshot(session)
        except SQLAlchemyError as exc:
            log.error(
                "devices: cannot read the store (%s); keeping the previous devices", exc.__class__.__name__
            )
        return self.snapshot

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            self.refresh(force=False)

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="netmon-devices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
