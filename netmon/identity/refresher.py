"""The proxy's copy of the signed-in sessions: a thread that reloads a :class:`SessionSnapshot` from the
store every few seconds (at once when the portal marks a change) and writes back when each address was
last active, for the idle timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from netmon.identity.sessions import (
    ARP_TABLE,
    SETTING_CHANGED,
    SessionSnapshot,
    ensure_link_key,
    get_setting,
    load_snapshot,
    read_neighbours,
)
from netmon.store.base import utcnow
from netmon.store.identity import DeviceSession

log = logging.getLogger(__name__)


class SessionRefresher:
    """Keeps a :class:`SessionSnapshot` fresh from the store in a background thread.

    ``touch(ip)`` (cheap, from the event loop) notes activity; each refresh writes the latest activity of
    signed-in addresses back to ``last_seen`` so the portal and ``netmon sessions`` see it too.
    """

    def __init__(self, engine: Engine, *, interval: float = 3.0, arp_path: Path | None = ARP_TABLE) -> None:
        self.engine = engine
        self.interval = interval
        self.arp_path = arp_path
        self.snapshot = SessionSnapshot()
        self._activity: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._marker: str | None = None
        self.min_gap = 0.2  # seconds between refreshes, however often wake() is called
        #: called from the refresh thread after each refresh with the time.monotonic() it started at
        self.on_refresh: Callable[[float], None] | None = None
        self.failures = 0

    def touch(self, ip: str, when: float | None = None) -> None:
        with self._lock:
            self._activity[ip] = time.time() if when is None else when

    def last_active(self, ip: str) -> float | None:
        return self._activity.get(ip)

    def _drain_activity(self) -> dict[str, float]:
        with self._lock:
            activity, self._activity = self._activity, {}
        return activity

    def refresh_if_changed(self) -> SessionSnapshot:
        """A cheap look at the change marker; the full reload only when a session started or ended."""
        try:
            with Session(self.engine) as session:
                marker = get_setting(session, SETTING_CHANGED)
        except SQLAlchemyError:
            return self.refresh()
        if marker == self._marker and self.snapshot.ok:
            return self.snapshot
        return self.refresh()

    def refresh(self) -> SessionSnapshot:
        """One full refresh (also called directly by tests). Keeps the old snapshot when the store fails."""
        activity = self._drain_activity()
        neighbours = read_neighbours(self.arp_path) if self.arp_path else {}
        try:
            with Session(self.engine) as session, session.begin():
                self._write_activity(session, activity)
                if not self.snapshot.link_key:
                    ensure_link_key(session)  # the proxy may start before the portal ever has
                marker = get_setting(session, SETTING_CHANGED)
                snapshot, stale = load_snapshot(session, neighbours)
                if stale:
                    now = utcnow()
                    session.execute(
                        update(DeviceSession)
                        .where(DeviceSession.id.in_(stale))
                        .values(ended_at=now, end_reason="new-device")
                    )
                    log.info("ended %d session(s): another device now holds the address", len(stale))
        except SQLAlchemyError as exc:
            self.failures += 1
            with self._lock:  # keep the activity for the next attempt
                for ip, when in activity.items():
                    self._activity.setdefault(ip, when)
            log.error("session refresh failed (keeping the previous snapshot): %s", exc.__class__.__name__)
            return self.snapshot
        self.snapshot = snapshot
        self._marker = marker
        return snapshot

    def _write_activity(self, session: Session, activity: Mapping[str, float]) -> None:
        current = self.snapshot.sessions
        for ip, when in activity.items():
            info = current.get(ip)
            if info is None or when <= info.last_seen:
                continue
            stamp = datetime.fromtimestamp(when, tz=utcnow().tzinfo)
            session.execute(
                update(DeviceSession)
                .where(
                    DeviceSession.id == info.session_id,
                    or_(DeviceSession.last_seen < stamp, DeviceSession.last_seen.is_(None)),
                )
                .values(last_seen=stamp)
            )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Ask for a refresh now (e.g. a device that may just have signed in); coalesced by ``min_gap``."""
        self._wake.set()

    def _run(self) -> None:
        last = last_full = time.monotonic()
        while not self._stop.is_set():
            woken = self._wake.wait(max(0.0, self.interval - (time.monotonic() - last_full)))
            if self._stop.is_set():
                break
            self._wake.clear()
            gap = self.min_gap - (time.monotonic() - last)
            if gap > 0 and self._stop.wait(gap):
                break
            last = time.monotonic()
            if woken and last - last_full < self.interval:
                self.refresh_if_changed()
            else:
                self.refresh()
                last_full = last
            callback = self.on_refresh
            if callback is not None:
                callback(last)

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="netmon-sessions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.refresh_activity_only()

    def refresh_activity_only(self) -> None:
        activity = self._drain_activity()
        if not activity:
            return
        try:
            with Session(self.engine) as session, session.begin():
                self._write_activity(session, activity)
        except SQLAlchemyError as exc:
            log.error("could not save session activity: %s", exc.__class__.__name__)
