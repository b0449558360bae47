"""Request safety: CSRF tokens, a sliding-window rate limiter, the session cookie and security headers."""

from __future__ import annotations

import ipaddress

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

#: Every console page: only its own scripts, styles and frames; never framed by another site.
PAGE_CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


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
