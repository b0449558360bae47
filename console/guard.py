"""Request safety: CSRF tokens, a sliding-window rate limiter, the session cookie and security headers."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

#: Every console page: only its own scripts, styles and frames; never framed by another site.
PAGE_CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: Mapping[str, Any], submitted: str | None) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and bool(submitted) and hmac.compare_digest(token, submitted or "")


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (per address, per user name)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> bool:
        """Count one event; True when it is over the limit (and so refused)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return True
            events.append(now)
            if len(self._events) > 10_000:
                for stale in [k for k, v in self._events.items() if not v]:
                    del self._events[stale]
            return False


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SessionInterface(SecureCookieSessionInterface):
    """Secure cookies, except for plain HTTP to a loopback address (the default binding, tests): off
    loopback the console must be behind TLS, or no browser will send the cookie back."""

    def get_cookie_secure(self, app: Flask) -> bool:  # type: ignore[override]
        forced = app.config.get("NETMON_SECURE_COOKIES")
        if forced is not None:
            return bool(forced)
        return request.is_secure or not _loopback(request.host)


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response
