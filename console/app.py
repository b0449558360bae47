"""The console's Flask app: configuration, the request guard (CSRF, session, sign-in required) and errors."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, g, redirect, render_template, request, session, url_for
from netmon_console import auditlog, auth, dashboard, library, views
from netmon_console.guard import SessionInterface, security_headers
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.identity import totp as staff_totp
from netmon.identity.guard import RateLimiter, csrf_ok, csrf_token
from netmon.identity.users import DirectoryConfig
from netmon.incidents import queries
from netmon.store.db import make_engine

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PUBLIC = {"auth.signin", "auth.totp", "static", "healthz"}
#: Seconds before the idle sign-out that the page warns and offers to stay signed in (half the idle
#: period when that is shorter).
IDLE_WARNING = 120


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


@dataclass
class ConsoleConfig:
    """Everything the console needs; ``netmon console`` fills it from its options and the environment."""

    db_url: str
    secret_key: str = ""  # cookie signing key: NETMON_CONSOLE_SECRET, else random per start
    trust_proxy: bool = False  # behind the school's own TLS reverse proxy: honour one X-Forwarded-* hop
    secure_cookies: bool | None = None  # None: Secure except plain HTTP on loopback
    idle: timedelta = timedelta(minutes=15)
    max_length: timedelta = timedelta(hours=10)
    lock_after: int = 5  # failed sign-ins (password or code) before the account locks
    lock_for: timedelta = timedelta(minutes=15)
    ip_limit: tuple[int, float] = (20, 60.0)  # sign-in attempts per address per seconds
    engine_options: dict[str, Any] = field(default_factory=dict)
    # the school's record system: review outcomes are queued for the signed webhook (empty: none)
    webhook_url: str = field(default_factory=lambda: os.environ.get("NETMON_WEBHOOK_URL", "").strip())
    # the phrase library and the school's overlay, where approved suggestions are written (console/library.py)
    library_root: Path = DEFAULT_LIBRARY_DIR
    overlay: Path | None = field(default_factory=lambda: _env_path("NETMON_LIBRARY_OVERLAY"))
    # the school directory that checks the passwords of `--auth directory` staff accounts (None: none)
    directory: DirectoryConfig | None = None
    # the key that seals TOTP secrets (netmon.identity.totp); None: NETMON_CONSOLE_KEY or the key file,
    # read when first needed
    totp_key: bytes | None = None


@dataclass
class ConsoleState:
    config: ConsoleConfig
    engine: Any
    ip_limiter: RateLimiter
    _key: bytes | None = None
    _key_lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self) -> bytes:
        """The TOTP sealing key (ConfigError when it cannot be read or made)."""
        with self._key_lock:
            if self._key is None:
                self._key = self.config.totp_key or staff_totp.load_key()
            return self._key


def _site_guard(uid: str) -> None:
    """Every URL of an incident (``/incidents/<uid>/...``, whichever blueprint serves it): 403 for an
    incident of another site than the signed-in member of staff's."""
    state = current_app.extensions["netmon_console"]
    with Session(state.engine) as db, db.begin():
        incident = queries.incident_by_uid(db, uid[:32])
        if incident is None or queries.in_site(g.staff.site, incident.site):
            return
        auth.record(db, "console.incident.refused", incident.uid, path=request.path, reason="site")
    abort(403)


def create_app(config: ConsoleConfig) -> Flask:
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(
        SECRET_KEY=config.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="netmon_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=256 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        NETMON_SECURE_COOKIES=config.secure_cookies,
    )
    app.session_interface = SessionInterface()
    if config.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.extensions["netmon_console"] = ConsoleState(
        config, make_engine(config.db_url, **config.engine_options), RateLimiter(*config.ip_limit)
    )
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(auditlog.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(library.bp)

    @app.before_request
    def _guard() -> Any:
        if request.method not in ("GET", "HEAD") and not csrf_ok(session, request.form.get("csrf")):
            abort(400, "The form expired or did not come from the console: reload the page and retry.")
        response = auth.check_session()
        if response is not None:
            return response
        if g.staff is None and request.endpoint not in PUBLIC:
            return redirect(url_for("auth.signin"))
        if g.staff is not None and g.staff.site and "uid" in (request.view_args or {}):
            _site_guard(str(request.view_args["uid"]))  # type: ignore[index]
        return None

    app.after_request(security_headers)

    @app.context_processor
    def _context() -> dict[str, Any]:
        idle = int(config.idle.total_seconds())  # the idle sign-out warning (static/idle.js)
        return {
            "csrf": csrf_token(session), "staff": g.get("staff"), "idle_seconds": idle,
            "idle_warn_seconds": min(IDLE_WARNING, idle // 2),
        }  # fmt: skip

    @app.route("/healthz")
    def healthz() -> Any:
        return {"ok": True}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return render_template("error.html", code=exc.code, name=exc.name, text=exc.description), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("console: unexpected error on %s", request.endpoint)
        return render_template("error.html", code=500, name="Error", text="Something went wrong."), 500

    return app
