"""Request safety shared by the web faces (the pupils' portal, the staff console): CSRF tokens kept in the
session, and sliding-window rate limits per key (an address, a user name). Plain Python: each face
brings its own framework."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: Mapping[str, Any], submitted: str | None) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and bool(submitted) and hmac.compare_digest(token, submitted or "")


class RateLimiter:
    """Sliding-window counter per key: at most ``limit`` events per ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def blocked(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return len(self._trim(key, now)) >= self.limit

    def hit(self, key: str, now: float | None = None) -> bool:
        """Count one event; True when it is over the limit (and so refused)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._trim(key, now)
            if len(events) >= self.limit:
                return True
            events.append(now)
            if len(self._events) > 10_000:  # forget idle keys
                for stale in [k for k, v in self._events.items() if not v]:
                    del self._events[stale]
            return False

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
