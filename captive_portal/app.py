"""The portal web app: AUP, sign-in, CA download and the RFC 8908 captive-portal API."""

from __future__ import annotations

import functools
import ipaddress
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from netmon_portal.ca import DEFAULT_CA_CERT, CaCertificate
from netmon_portal.guard import continue_url
from netmon_portal.i18n import strings
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from netmon.config.paths import DEPLOY_DIR
from netmon.identity.aup import AupSource
from netmon.identity.guard import RateLimiter, csrf_ok, csrf_token
from netmon.identity.probes import TRUST_CHECK_URL
from netmon.identity.sessions import (
    ARP_TABLE,
    DEFAULT_IDLE,
    DEFAULT_MAX,
    SETTING_AUP_VERSION,
    end_sessions,
    ensure_link_key,
    get_setting,
    known_device,
    mark_changed,
    normalise_ip,
    read_neighbours,
    session_for_ip,
    set_setting,
    start_session,
)
from netmon.identity.signing import CLIENT_IP_HEADER, verified_client_ip
from netmon.identity.users import DirectoryConfig, DirectoryError, authenticate, normalise_username
from netmon.ops import counters
from netmon.store.db import make_engine
from netmon.store.incidents import audit

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=256)
def is_local_address(address: str) -> bool:
    """True for this host's own addresses (loopback included): only the proxy can connect from them."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))  # succeeds only for an address of this host
        return True
    except OSError:
        return False


DEFAULT_PAC = DEPLOY_DIR / "pac" / "proxy.pac"


def device_os(user_agent: str) -> str:
    """Which install steps to open first: ios | android | windows | macos | chromeos ("" if unknown)."""
    ua = user_agent.lower()
    for needle, name in (
        ("iphone", "ios"),
        ("ipad", "ios"),
        ("android", "android"),
        ("cros", "chromeos"),
        ("windows", "windows"),
        ("macintosh", "macos"),
    ):
        if needle in ua:
            return name
    return ""


class LoopbackProxyFix:
    """``--trust-proxy``: honour one X-Forwarded-For/-Proto/-Host hop, but only from a reverse proxy on
    this host (a loopback peer); from anyone else those headers are removed, never believed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            loopback = ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return self.fixed(environ, start_response)
        for key in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST"):
            environ.pop(key, None)
        return self.app(environ, start_response)


@dataclass
class PortalConfig:
    """Everything the portal needs; ``netmon portal`` fills it from its options and environment."""

    db_url: str
    aup_dir: Path | None = None
    public_url: str = ""  # the address devices use, e.g. https://portal.school.example/ (RFC 8908)
    ca_cert: Path = DEFAULT_CA_CERT
    organisation: str = "School"
    idle: timedelta = DEFAULT_IDLE
    max_length: timedelta = DEFAULT_MAX
    directory: DirectoryConfig | None = None
    secret_key: str = ""  # cookie signing key; NETMON_PORTAL_SECRET, else random per start
    trust_proxy: bool = False  # honour one X-Forwarded-For hop (only behind your own reverse proxy)
    secure_cookies: bool | None = None  # None: Secure whenever the request came over HTTPS
    ip_limit: tuple[int, float] = (10, 60.0)  # sign-in attempts per address per seconds
    user_limit: tuple[int, float] = (5, 300.0)  # failed sign-ins per user name per seconds
    arp_path: Path | None = ARP_TABLE
    pac_file: Path | None = DEFAULT_PAC  # served as /proxy.pac and /wpad.dat (explicit-proxy alternative)


class _SessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:  # type: ignore[override]
        forced = app.config.get("NETMON_SECURE_COOKIES")
        return bool(forced) if forced is not None else request.is_secure


def create_app(config: PortalConfig) -> Flask:
    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(
        SECRET_KEY=config.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="netmon_portal",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
        MAX_CONTENT_LENGTH=64 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
        NETMON_SECURE_COOKIES=config.secure_cookies,
    )
    app.session_interface = _SessionInterface()
    if config.trust_proxy:
        app.wsgi_app = LoopbackProxyFix(app.wsgi_app)  # type: ignore[method-assign]
    engine = make_engine(config.db_url)
    aup_source = AupSource(config.aup_dir)
    state: dict[str, Any] = {"aup_version": None}
    state_lock = threading.Lock()
    with Session(engine) as db, db.begin():
        link_key = ensure_link_key(db)
    ip_limiter = RateLimiter(*config.ip_limit)  # attempts per device
    user_limiter = RateLimiter(*config.user_limit)  # failures per account, from any device
    pair_limiter = RateLimiter(*config.user_limit)  # failures per account on this device

    def _locked_out(username: str, ip: str, mac: str | None) -> bool:
        """Too many wrong passwords for this account on this device, or (from any device) for this account
        and this is not a device the account has signed in on before: guesses made for a pupil from other
        devices never lock that pupil out of their own."""
        if pair_limiter.blocked(f"{username}|{ip}"):
            return True
        if not user_limiter.blocked(username):
            return False
        with Session(engine) as db:
            return not known_device(db, username, ip=ip, mac=mac)

    app.extensions["netmon"] = {
        "engine": engine,
        "config": config,
        "ip_limiter": ip_limiter,
        "user_limiter": user_limiter,
    }

    def current_aup() -> Any:
        aup = aup_source.get()
        with state_lock:
            if state["aup_version"] != aup.version:
                with Session(engine) as db, db.begin():
                    if get_setting(db, SETTING_AUP_VERSION) != aup.version:
                        set_setting(db, SETTING_AUP_VERSION, aup.version)
                        mark_changed(db)
                state["aup_version"] = aup.version
        return aup

    current_aup()
    # `netmon portal` calls this every few seconds so that an AUP edit takes effect (everyone accepts the
    # new version) even before anyone opens the portal again
    app.extensions["netmon"]["sync_aup"] = current_aup

    def client_ip() -> str:
        cached = g.get("client_ip")
        if cached is not None:
            return str(cached)
        peer = normalise_ip(request.remote_addr or "")
        address = peer
        forwarded = request.headers.get(CLIENT_IP_HEADER, "")
        if forwarded:
            # only the proxy can sign it (a device's own header is removed by the proxy, and a device
            # talking to the portal directly cannot make a valid signature)
            named = verified_client_ip(link_key, forwarded)
            try:
                address = normalise_ip(str(ipaddress.ip_address(named))) if named else peer
            except ValueError:
                address = peer
            if named is None:
                counters.incr("portal.client-ip.forged")
                log.warning("ignored an unsigned or invalid %s from %s", CLIENT_IP_HEADER, peer)
        g.client_ip = address
        return address

    def language() -> str:
        aup = current_aup()
        lang = request.values.get("lang") or session.get("lang") or aup.default_language
        return lang if lang in aup.texts else aup.default_language

    def portal_url() -> str:
        return config.public_url or request.host_url

    @app.before_request
    def _prepare() -> None:
        g.lang = language()
        g.t = strings(g.lang)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' https://{TRUST_CHECK_URL.split('/')[2]}; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
        context.setdefault("device_os", device_os(request.headers.get("User-Agent", "")))
        aup = current_aup()
        other = [lang for lang in aup.languages if lang != g.lang]
        return render_template(
            template, t=g.t, lang=g.lang, aup=aup, other_languages=other, csrf=csrf_token(session), **context
        ), status

    def signin_page(status: int = 200, error: str | None = None, username: str = "") -> tuple[str, int]:
        aup = current_aup()
        target = continue_url(request.values.get("next"), request.values.get("sig"), link_key, client_ip())
        return render(
            "signin.html",
            status,
            text=aup.text(g.lang),
            error=error,
            username=username,
            next=target or "",
            sig=request.values.get("sig", "") if target else "",
        )

    def signed_in() -> Any:
        with Session(engine) as db:
            row = session_for_ip(db, client_ip(), current_aup().version)
            if row is not None:
                db.expunge(row)
            return row

    @app.get("/")
    def index() -> Any:
        if "lang" in request.args and request.args["lang"] in current_aup().texts:
            session["lang"] = request.args["lang"]
        row = signed_in()
        if row is not None:
            target = continue_url(request.args.get("next"), request.args.get("sig"), link_key, client_ip())
            return render(
                "welcome.html",
                name=row.display_name or row.username,
                next=target or "",
                ca=CaCertificate.load(config.ca_cert),
                trust_url=TRUST_CHECK_URL,
            )
        return signin_page()

    @app.post("/signin")
    def signin() -> Any:
        ip = client_ip()
        if not csrf_ok(session, request.form.get("csrf")):
            counters.incr("portal.csrf-refused")
            with Session(engine) as db, db.begin():
                audit(db, "portal.csrf.refused", actor=ip)
            return render("error.html", 400, message=g.t["expired"])
        username = normalise_username(request.form.get("username", ""))[:150]
        password = request.form.get("password", "")
        mac = read_neighbours(config.arp_path).get(ip) if config.arp_path else None
        if ip_limiter.hit(ip) or (username and _locked_out(username, ip, mac)):
            counters.incr("portal.rate-limited")
            with Session(engine) as db, db.begin():
                audit(db, "portal.signin.ratelimited", actor=ip, subject=username or None)
            page, _ = signin_page(429, g.t["too_many"], username)
            return Response(page, 429, headers={"Retry-After": "60"})
        # The sign-in button reads "Accept the AUP and sign in": submitting the form is the acceptance.
        aup = current_aup()
        with Session(engine) as db, db.begin():
            try:
                account = authenticate(db, username, password, config.directory)
            except DirectoryError as exc:
                log.error("sign-in: %s", exc)
                audit(db, "portal.signin.error", actor=ip, subject=username or None, reason="directory")
                return signin_page(503, g.t["directory_down"], username)
            if account is None:
                user_limiter.hit(username or "-")
                pair_limiter.hit(f"{username}|{ip}")
                counters.incr("portal.signin.failed")
                audit(db, "portal.signin.failed", actor=ip, subject=username or None, mac=mac)
                log.info("sign-in failed from %s", ip)
                return signin_page(401, g.t["bad_login"], username)
            start_session(
                db,
                account,
                ip=ip,
                mac=mac,
                user_agent=request.headers.get("User-Agent", ""),
                aup_version=aup.version,
                language=g.lang,
                idle=config.idle,
                max_length=config.max_length,
            )
            audit(
                db,
                "portal.signin",
                actor=account.username,
                subject=ip,
                mac=mac,
                source=account.source,
                aup_version=aup.version,
                language=g.lang,
            )
        # the account-wide count is left to expire: the owner signing in on their own device must not
        # reset it for whoever is guessing elsewhere
        pair_limiter.clear(f"{username}|{ip}")
        counters.incr("portal.signin")
        log.info("signed in: %s at %s", account.username, ip)
        session["csrf"] = secrets.token_urlsafe(32)  # a fresh token after sign-in
        target = continue_url(request.form.get("next"), request.form.get("sig"), link_key, ip)
        if target:
            return redirect(target, 303)
        return redirect(url_for("index"), 303)

    @app.post("/signout")
    def signout() -> Any:
        if not csrf_ok(session, request.form.get("csrf")):
            return render("error.html", 400, message=g.t["expired"])
        ip = client_ip()
        with Session(engine) as db, db.begin():
            if end_sessions(db, ip=ip, reason="signed-out"):
                audit(db, "portal.signout", actor=ip, subject=ip)
        return render("error.html", 200, message=g.t["signed_out"], title=g.t["signed_out"])

    @app.get("/ca")
    def ca_page() -> Any:
        return render(
            "ca.html", ca=CaCertificate.load(config.ca_cert), trust_url=TRUST_CHECK_URL, device_os="all"
        )

    def _ca_or_404() -> CaCertificate:
        ca = CaCertificate.load(config.ca_cert)
        if ca is None:
            abort(404)
        return ca

    def _download(body: bytes, mimetype: str, filename: str) -> Response:
        return Response(
            body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )

    @app.get("/ca/netmon-ca.pem")
    @app.get("/ca.pem")
    def ca_pem() -> Response:
        return _download(_ca_or_404().pem, "application/x-pem-file", "netmon-ca.pem")

    @app.get("/ca/netmon-ca.crt")
    @app.get("/ca.crt")
    def ca_der() -> Response:
        return _download(_ca_or_404().der, "application/x-x509-ca-cert", "netmon-ca.crt")

    @app.get("/ca/netmon.mobileconfig")
    @app.get("/ca.mobileconfig")
    def ca_profile() -> Response:
        body = _ca_or_404().mobileconfig(config.organisation)
        return _download(body, "application/x-apple-aspen-config", "netmon.mobileconfig")

    @app.get("/api/captive")
    @app.get("/api/captive-portal")
    @app.get("/captive-portal/api")
    @app.get("/.well-known/captive-portal")
    def captive_api() -> Response:
        """RFC 8908 captive-portal API (its URL goes in DHCP option 114, RFC 8910)."""
        row = signed_in()
        body: dict[str, Any] = {"captive": row is None, "user-portal-url": portal_url()}
        if row is not None:
            from netmon.store.base import utcnow

            now = utcnow()
            remaining = min(row.expires_at - now, row.last_seen + timedelta(seconds=row.idle_seconds) - now)
            body["seconds-remaining"] = max(0, int(remaining.total_seconds()))
            body["can-extend-session"] = False
        response = jsonify(body)
        response.mimetype = "application/captive+json"
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @app.get("/proxy.pac")
    @app.get("/wpad.dat")
    def pac() -> Response:
        try:
            body = config.pac_file.read_bytes() if config.pac_file else None
        except OSError:
            body = None
        if body is None:
            abort(404)
        return Response(body, mimetype="application/x-ns-proxy-autoconfig")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        t = strings(getattr(g, "lang", "en"))
        if not hasattr(g, "t"):
            g.t, g.lang = t, "en"
        page, _ = render("error.html", code, message=t["error"], title=t["error_title"])
        return page, code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.error(
            "portal error %s on %s %s",
            exc.__class__.__name__,
            request.method,
            request.path,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        if not hasattr(g, "t"):
            g.t, g.lang = strings("en"), "en"
        try:
            page, _ = render("error.html", 500, message=g.t["error"], title=g.t["error_title"])
        except Exception:  # noqa: BLE001 - the error page itself failed (e.g. AUP unreadable): plain text
            return Response("Something went wrong. Please try again.\n", 500, mimetype="text/plain")
        return page, 500

    def lang_link(lang: str) -> str:
        args = {"lang": lang}
        target = continue_url(request.args.get("next"), request.args.get("sig"), link_key, client_ip())
        if target:
            args.update(next=target, sig=request.args.get("sig", ""))
        return f"{request.path}?{urlencode(args)}"

    app.jinja_env.globals["lang_link"] = lang_link
    return app
