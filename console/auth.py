"""Who is signed in and what they may do: sign-in with an argon2 password (or, for a ``directory``
account, a bind to the school's directory) and a TOTP code, lockout after repeated failures, rate limits
per address, idle and absolute session timeouts, role permissions.

Roles (netmon.store.console.ROLES) map to permissions: ``incidents`` (the queue and incident pages),
``content`` (what the pupil sent or saw: excerpts, matched text, URLs, the capture), ``outcome``
(change a review), ``export`` (CSV of a view), ``audit`` (the audit log) and ``library`` (approve or
reject suggested library changes). A pastoral lead's scope limits every incident they can reach, and a
member of staff with a site (a school of the trust) sees that site's incidents only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.errors import ConfigError
from netmon.identity import totp as staff_totp
from netmon.identity.users import DirectoryError, directory_authenticate, normalise_username, verify_password
from netmon.store.base import utcnow
from netmon.store.console import CONTENT_ROLES, StaffAccount
from netmon.store.incidents import AuditEvent, audit

log = logging.getLogger(__name__)

PERMISSIONS: dict[str, frozenset[str]] = {
    "dsl": frozenset({"incidents", "content", "outcome", "export", "audit", "library"}),
    "deputy_dsl": frozenset({"incidents", "content", "outcome", "export"}),
    "pastoral": frozenset({"incidents", "content", "outcome", "export"}),
    "network_admin": frozenset({"incidents", "library"}),
    "auditor": frozenset({"audit"}),
}
PENDING_SECONDS = 300  # between a right password and its TOTP code

bp = Blueprint("auth", __name__)


@dataclass(frozen=True, slots=True)
class Staff:
    username: str
    display_name: str
    role: str
    scope: tuple[str, ...] | None  # None: every pupil
    site: str = ""  # "": every site of the trust

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def home(self) -> str:
        return "console.queue" if self.can("incidents") else "audit.log"


def state() -> Any:
    return current_app.extensions["netmon_console"]


def address() -> str:
    return request.remote_addr or "?"


def record(
    db: Session, action: str, subject: str | None = None, at_site: str | None = None, **detail: Any
) -> AuditEvent:
    """An audit event by the signed-in member of staff (or the address), from this request's address, at
    ``at_site`` (an incident's site; default: the member of staff's), so a site's auditor reads it."""
    staff = getattr(g, "staff", None)
    actor = staff.username if staff else None
    site = at_site if at_site is not None else (staff.site if staff else "")
    return audit(db, action, actor=actor, subject=subject, site=site, address=address(), **detail)


def load_staff(db: Session, username: str) -> Staff | None:
    account = db.scalars(select(StaffAccount).where(StaffAccount.username == username)).one_or_none()
    if account is None or account.disabled:
        return None
    scope = tuple(account.scope or ()) if account.role == "pastoral" else None
    return Staff(account.username, account.display_name, account.role, scope, account.site or "")


def require(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if not g.staff.can(permission):
                abort(403)
            return view(*args, **kwargs)

        return inner

    return wrap


def check_session() -> Any:
    """Before every request: end timed-out or disabled sessions; None to go on, else a response."""
    g.staff = None
    username = session.get("staff")
    if not username:
        return None
    config = state().config
    now = time.time()
    if (
        now - session.get("seen", 0) > config.idle.total_seconds()
        or now - session.get("auth_at", 0) > config.max_length.total_seconds()
    ):
        session.clear()
        session["notice"] = "Your session timed out: sign in again."
        return redirect(url_for("auth.signin"))
    with Session(state().engine) as db:
        staff = load_staff(db, username)
    if staff is None:
        session.clear()
        return redirect(url_for("auth.signin"))
    g.staff = staff
    session["seen"] = now
    return None


def _fail(db: Session, account: StaffAccount | None, username: str, stage: str) -> None:
    config = state().config
    site = account.site if account is not None else ""
    if account is not None:
        account.failed_attempts += 1
        if account.failed_attempts >= config.lock_after:
            account.locked_until = utcnow() + config.lock_for
            record(db, "console.signin.locked", username, site, attempts=account.failed_attempts)
    record(db, "console.signin.failed", username, site, stage=stage)


def _locked(account: StaffAccount | None, now: datetime) -> bool:
    return account is not None and account.locked_until is not None and account.locked_until > now


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    notice = session.pop("notice", None)
    return render_template(template, notice=notice, **context), status


KEY_PROBLEM = (
    "Your second factor cannot be read on this console: tell the network admin (the console's key "
    "changed; `netmon staff totp` enrols again)."
)


def _account(db: Session, username: str) -> StaffAccount | None:
    return db.scalars(select(StaffAccount).where(StaffAccount.username == username)).one_or_none()


def _directory_check(username: str, password: str) -> bool | None:
    """The password checked by a bind to the school's directory; None when it cannot be asked."""
    directory = state().config.directory
    if directory is None:
        verify_password(None, password)  # the cost of a check, as for any refusal
        return None
    try:
        return directory_authenticate(directory, username, password) is not None
    except DirectoryError as exc:
        log.warning("console: directory sign-in failed: %s", exc)
        return None


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    if request.method == "GET":
        return _page("signin.html")
    if state().ip_limiter.hit(address()):
        return _page("signin.html", 429, error="Too many attempts from this address: wait a minute.")
    username = normalise_username(request.form.get("username", ""))[:150]
    password = request.form.get("password", "")
    with Session(state().engine) as db, db.begin():
        account = _account(db, username)
        if _locked(account, utcnow()):
            record(db, "console.signin.refused", username, account.site if account else "", reason="locked")
            return _page("signin.html", 403, error="This account is locked after failed sign-ins: try later.")
        directory = account is not None and account.uses_directory and not account.disabled
        local_hash = account.password_hash if account is not None and not directory else None
    # a directory bind (up to its timeout) runs outside any transaction
    ok = _directory_check(username, password) if directory else verify_password(local_hash, password)
    with Session(state().engine) as db, db.begin():
        account = _account(db, username)
        if ok is None:
            record(db, "console.signin.error", username, account.site if account else "", reason="directory")
            return _page(
                "signin.html", 503, username=username,
                error="The school directory cannot check your password now: try again in a minute.",
            )  # fmt: skip
        if not ok or account is None or account.disabled:
            _fail(db, account, username, "password")
            return _page(
                "signin.html", 401, error="Wrong user name or password.", username=username, invalid=True
            )
        if account.totp_secret is None and account.role in CONTENT_ROLES:
            record(db, "console.signin.refused", username, account.site, reason="no second factor")
            return _page("signin.html", 403, error="No second factor: ask for `netmon staff totp`.")
        enrolled = account.totp_secret is not None
    session.clear()
    session["pending"] = {"user": username, "at": time.time()}
    if not enrolled:
        return _complete(username)
    return redirect(url_for("auth.totp"))


def _totp_ok(account: StaffAccount, code: str) -> bool:
    """A current code (one step of clock drift either way) newer than the last one accepted. A secret
    stored before sealing is sealed now (when the key can be had)."""
    if account.totp_secret is None:
        return False
    stored = account.totp_secret
    sealed = staff_totp.is_sealed(stored)
    secret = staff_totp.open_secret(stored, account.username, state().key()) if sealed else stored
    step = staff_totp.accepted_step(secret, code, account.totp_last_step)
    if step is None:
        return False
    account.totp_last_step = step
    if not sealed:
        try:
            account.totp_secret = staff_totp.seal(secret, account.username, state().key())
        except ConfigError as exc:  # the key cannot be had: the sign-in goes on, the secret stays plain
            log.warning("console: TOTP secret of %s left unsealed: %s", account.username, exc)
    return True


@bp.route("/signin/totp", methods=["GET", "POST"])
def totp() -> Any:
    pending = session.get("pending")
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        session.clear()
        return redirect(url_for("auth.signin"))
    if request.method == "GET":
        return _page("totp.html")
    if state().ip_limiter.hit(address()):
        return _page("totp.html", 429, error="Too many attempts from this address: wait a minute.")
    username = pending["user"]
    code = request.form.get("code", "").strip().replace(" ", "")
    with Session(state().engine) as db, db.begin():
        account = _account(db, username)
        if account is None or account.disabled or _locked(account, utcnow()):
            session.clear()
            return redirect(url_for("auth.signin"))
        try:
            ok = _totp_ok(account, code)
        except (staff_totp.SealError, ConfigError) as exc:
            log.error("console: %s", exc)
            record(db, "console.signin.error", username, account.site, reason="totp key")
            return _page("totp.html", 500, error=KEY_PROBLEM)
        if not ok:
            _fail(db, account, username, "totp")
            return _page("totp.html", 401, error="That code is wrong or already used.", invalid=True)
    return _complete(username)


def _complete(username: str) -> Any:
    session.clear()  # a new session (and CSRF token) after sign-in: nothing carries over
    now = time.time()
    session.update(staff=username, auth_at=now, seen=now)
    with Session(state().engine) as db, db.begin():
        account = db.scalars(select(StaffAccount).where(StaffAccount.username == username)).one()
        account.failed_attempts = 0
        account.locked_until = None
        account.last_signin_at = utcnow()
        audit(
            db, "console.signin", actor=username, subject=username, site=account.site or "", address=address()
        )
        staff = load_staff(db, username)
    assert staff is not None
    return redirect(url_for(staff.home))


@bp.route("/keepalive", methods=["POST"])
def keepalive() -> Any:
    """ "Stay signed in" from the idle warning (static/idle.js): a request with the CSRF token, so the
    session's idle clock has just restarted in :func:`check_session`."""
    if g.staff is None:
        abort(401)
    return {"ok": True, "idle_seconds": int(state().config.idle.total_seconds())}


@bp.route("/signout", methods=["POST"])
def signout() -> Any:
    if g.staff is not None:
        with Session(state().engine) as db, db.begin():
            record(db, "console.signout", g.staff.username)
    session.clear()
    session["notice"] = "Signed out."
    return redirect(url_for("auth.signin"))
