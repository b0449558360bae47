"""Device sessions: which user is behind an address (IP, plus MAC when the gateway sees it).

The portal starts and ends sessions in the store. The proxy never reads the store per request: a
``netmon.identity.refresher.SessionRefresher`` thread loads an immutable :class:`SessionSnapshot` every
few seconds, writes back when each address was last active (for the idle timeout), and the proxy's hooks
only look at the snapshot.

A session is live while it has not been ended, its idle timeout and maximum length have not passed and it
was accepted under the current AUP version. A different device on the same address (another MAC in the
gateway's neighbour table) never inherits the session: it is ended as ``new-device``.

Sessions belong to a site. In a trust whose schools share one PostgreSQL store, two schools may hand
out the same private addresses: every read and write here is for one site only, by default the site of
the store engine (``NETMON_SITE``, see :func:`netmon.store.db.make_engine`), so a pupil signed in at one
school never names a device at another.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from netmon.identity.users import Account
from netmon.store.base import utcnow
from netmon.store.db import store_site
from netmon.store.identity import AupAcceptance, DeviceSession, PortalSetting

log = logging.getLogger(__name__)

ARP_TABLE = Path("/proc/net/arp")
DEFAULT_IDLE = timedelta(hours=2)
DEFAULT_MAX = timedelta(hours=10)
SETTING_AUP_VERSION = "aup_version"
SETTING_LINK_KEY = "link_key"
SETTING_CHANGED = "sessions_changed"  # a new random value whenever a session starts or is ended


def normalise_ip(address: str) -> str:
    return address.strip().removeprefix("::ffff:").lower()


def read_neighbours(path: Path = ARP_TABLE) -> dict[str, str]:
    """IPv4 address -> MAC from the kernel's neighbour table (empty when it cannot be read)."""
    table: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return table
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[3] != "00:00:00:00:00:00" and parts[2] != "0x0":
            table[parts[0]] = parts[3].lower()
    return table


# --- settings shared by portal and proxy ----------------------------------------------------------------


def get_setting(session: Session, key: str) -> str | None:
    row = session.get(PortalSetting, key)
    return row.value if row else None


def set_setting(session: Session, key: str, value: str) -> None:
    row = session.get(PortalSetting, key)
    if row is None:
        session.add(PortalSetting(key=key, value=value, updated_at=utcnow()))
    elif row.value != value:
        row.value = value
        row.updated_at = utcnow()


def ensure_link_key(session: Session) -> str:
    """The key that signs the gate's "continue to" links (created once, shared through the store).

    Two gateways of a trust (or a gateway and its portal) may start at the same moment on an empty
    store: the one whose insert loses keeps the other's key instead of failing its start."""
    key = get_setting(session, SETTING_LINK_KEY)
    if key is not None:
        return key
    try:
        with session.begin_nested():
            session.add(PortalSetting(key=SETTING_LINK_KEY, value=secrets.token_hex(32), updated_at=utcnow()))
    except IntegrityError:
        pass  # another process made it first: theirs stands
    row = session.execute(select(PortalSetting.value).where(PortalSetting.key == SETTING_LINK_KEY)).scalar()
    if row is None:
        raise RuntimeError("the link key could not be made or read")
    return str(row)


# --- sessions in the store ------------------------------------------------------------------------------


def _open(now: datetime) -> list[ColumnElement[bool]]:
    return [DeviceSession.ended_at.is_(None), DeviceSession.expires_at > now]


def site_of(session: Session, site: str | None) -> str:
    """``site``, or (None) the site of the store the session writes to."""
    return store_site(session) if site is None else site[:100]


def start_session(
    session: Session,
    account: Account,
    *,
    ip: str,
    mac: str | None,
    user_agent: str,
    aup_version: str,
    language: str,
    idle: timedelta = DEFAULT_IDLE,
    max_length: timedelta = DEFAULT_MAX,
    now: datetime | None = None,
    site: str | None = None,
) -> DeviceSession:
    """Sign a device in: end whatever session its address had, record the AUP acceptance, start a new one.
    The session is ``site``'s (default: the store engine's site)."""
    now = now or utcnow()
    ip = normalise_ip(ip)
    site = site_of(session, site)
    end_sessions(session, ip=ip, reason="replaced", now=now, site=site)
    agent = user_agent[:300]
    session.add(
        AupAcceptance(
            time=now,
            username=account.username,
            aup_version=aup_version,
            language=language,
            ip=ip,
            mac=mac,
            user_agent=agent,
        )
    )
    row = DeviceSession(
        username=account.username,
        display_name=account.display_name,
        role=account.role,
        year_group=account.year_group,
        groups=list(account.groups),
        ip=ip,
        mac=mac,
        user_agent=agent,
        aup_version=aup_version,
        started_at=now,
        last_seen=now,
        idle_seconds=int(idle.total_seconds()),
        expires_at=now + max_length,
        site=site,
    )
    session.add(row)
    mark_changed(session)
    return row


def end_sessions(
    session: Session,
    *,
    ip: str | None = None,
    username: str | None = None,
    reason: str,
    now: datetime | None = None,
    site: str | None = None,
) -> int:
    """End the open sessions of an address or a user at ``site`` (default: the store engine's site);
    returns how many were ended."""
    now = now or utcnow()
    query = update(DeviceSession).where(
        DeviceSession.ended_at.is_(None), DeviceSession.site == site_of(session, site)
    )
    if ip is not None:
        query = query.where(DeviceSession.ip == normalise_ip(ip))
    if username is not None:
        query = query.where(DeviceSession.username == username.strip().lower())
    result = session.execute(query.values(ended_at=now, end_reason=reason))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        mark_changed(session)
    return count


#: How long a device stays "known" for an account after the account last signed in on it.
KNOWN_DEVICE_DAYS = 90


def known_device(
    session: Session, username: str, *, ip: str, mac: str | None, now: datetime | None = None
) -> bool:
    """Whether ``username`` signed in on this device (its MAC, else its address) within KNOWN_DEVICE_DAYS:
    the account's own device, which an account-wide lockout must never shut out."""
    since = (now or utcnow()) - timedelta(days=KNOWN_DEVICE_DAYS)
    same_device = AupAcceptance.mac == mac if mac else AupAcceptance.ip == normalise_ip(ip)
    query = (
        select(AupAcceptance.id)
        .where(AupAcceptance.username == username, AupAcceptance.time >= since, same_device)
        .limit(1)
    )
    return session.scalar(query) is not None


def mark_changed(session: Session) -> None:
    """Tell the proxy's refresher that sessions changed (it then reloads at once when asked to)."""
    set_setting(session, SETTING_CHANGED, secrets.token_hex(8))


def live(row: DeviceSession, now: datetime, aup_version: str | None) -> bool:
    if row.ended_at is not None or row.expires_at <= now:
        return False
    if now - row.last_seen > timedelta(seconds=row.idle_seconds):
        return False
    return aup_version is None or row.aup_version == aup_version


def open_sessions(
    session: Session, now: datetime | None = None, *, site: str | None = None
) -> list[DeviceSession]:
    """Sessions of ``site`` (default: the store engine's site) not yet ended or expired (idle and AUP
    checks are applied by :func:`live`)."""
    now = now or utcnow()
    query = (
        select(DeviceSession)
        .where(*_open(now), DeviceSession.site == site_of(session, site))
        .order_by(DeviceSession.ip, DeviceSession.started_at)
    )
    return list(session.scalars(query))


def session_for_ip(
    session: Session,
    ip: str,
    aup_version: str | None,
    now: datetime | None = None,
    *,
    site: str | None = None,
) -> DeviceSession | None:
    now = now or utcnow()
    query = (
        select(DeviceSession)
        .where(
            *_open(now), DeviceSession.ip == normalise_ip(ip), DeviceSession.site == site_of(session, site)
        )
        .order_by(DeviceSession.started_at.desc())
    )
    for row in session.scalars(query):
        if live(row, now, aup_version):
            return row
    return None


# --- the proxy's view -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the proxy knows about one signed-in address."""

    session_id: int
    user: str
    display_name: str
    role: str
    year_group: str | None
    groups: tuple[str, ...]
    ip: str
    mac: str | None
    aup_version: str
    last_seen: float  # POSIX time, as stored
    idle_seconds: int
    expires_at: float  # POSIX time

    def as_metadata(self, mac: str | None = None) -> dict[str, object]:
        """The ``flow.metadata["netmon.user"]`` dict."""
        return {
            "user": self.user,
            "role": self.role,
            "year_group": self.year_group,
            "groups": list(self.groups),
            "mac": mac or self.mac,
        }


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Immutable view of live sessions, swapped by one reference each refresh."""

    sessions: Mapping[str, SessionInfo] = field(default_factory=lambda: MappingProxyType({}))
    neighbours: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    aup_version: str | None = None
    link_key: str | None = None
    loaded_at: float = 0.0
    ok: bool = False  # False until the store has been read once (the gate then fails closed)

    def mac_of(self, ip: str) -> str | None:
        return self.neighbours.get(normalise_ip(ip))

    def lookup(
        self, ip: str, *, mac: str | None = None, now: float | None = None, last_active: float | None = None
    ) -> SessionInfo | None:
        """The live session of ``ip``, or None (no session, expired, idle, or another device)."""
        info = self.sessions.get(normalise_ip(ip))
        if info is None:
            return None
        now = time.time() if now is None else now
        if now >= info.expires_at:
            return None
        if now - max(info.last_seen, last_active or 0.0) > info.idle_seconds:
            return None
        mac = mac or self.mac_of(ip)
        if info.mac and mac and info.mac != mac:
            return None
        return info


def load_snapshot(
    session: Session,
    neighbours: Mapping[str, str] | None = None,
    now: datetime | None = None,
    *,
    site: str | None = None,
) -> tuple[SessionSnapshot, list[int]]:
    """Read the live sessions of ``site`` (default: the store engine's site); returns the snapshot and the
    ids of sessions now held by another device."""
    now = now or utcnow()
    aup_version = get_setting(session, SETTING_AUP_VERSION)
    neighbours = dict(neighbours or {})
    sessions: dict[str, SessionInfo] = {}
    stale: list[int] = []
    for row in open_sessions(session, now, site=site):
        if not live(row, now, aup_version):
            continue
        current_mac = neighbours.get(row.ip)
        if row.mac and current_mac and row.mac != current_mac:
            stale.append(row.id)
            continue
        previous = sessions.get(row.ip)
        if previous is not None and previous.session_id > row.id:
            continue
        sessions[row.ip] = SessionInfo(
            session_id=row.id,
            user=row.username,
            display_name=row.display_name,
            role=row.role,
            year_group=row.year_group,
            groups=tuple(row.groups or ()),
            ip=row.ip,
            mac=row.mac,
            aup_version=row.aup_version,
            last_seen=row.last_seen.timestamp(),
            idle_seconds=row.idle_seconds,
            expires_at=row.expires_at.timestamp(),
        )
    snapshot = SessionSnapshot(
        sessions=MappingProxyType(sessions),
        neighbours=MappingProxyType(neighbours),
        aup_version=aup_version,
        link_key=get_setting(session, SETTING_LINK_KEY),
        loaded_at=time.time(),
        ok=True,
    )
    return snapshot, stale
