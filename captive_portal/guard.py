"""Request safety for the portal: CSRF tokens, sign-in rate limits and "continue to" URL checks."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from netmon.identity.signing import link_signature_ok


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


def safe_local_path(target: str) -> bool:
    """A path on the portal itself ("/ca"), never "//host", "/\\host" or a scheme."""
    return (
        target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
        and not any(ord(c) < 32 for c in target)
    )


def continue_url(
    target: str | None, signature: str | None, link_key: str | None, device: str = ""
) -> str | None:
    """Where to send the device after sign-in, or None.

    Only a URL the gate signed for this device (with the key it shares with the portal through the store:
    the URL the device itself asked for) or a path on the portal itself is accepted: anything else would
    make the portal an open redirect.
    """
    if not target or len(target) > 4000:
        return None
    if safe_local_path(target):
        return target
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    if any(ord(c) < 32 for c in target):
        return None
    if link_signature_ok(link_key, target, signature or "", device):
        return target
    return None
