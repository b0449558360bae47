"""Sign-in: password then TOTP, lockout, rate limits, CSRF, timeouts, disabled accounts, headers."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.store.console import StaffAccount
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent
from tests.console.conftest import PASSWORD, STAFF, csrf_of, sign_in


def audit_rows(url: str, action: str | None = None) -> list[AuditEvent]:
    engine = make_engine(url)
    with Session(engine) as db:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        rows = list(db.scalars(stmt))
    engine.dispose()
    return rows


def test_every_page_needs_sign_in(client: FlaskClient) -> None:
    for path in ("/", "/incidents", "/incidents/abc", "/incidents/abc/capture", "/audit", "/export.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/signin"), path


def test_password_and_totp_sign_in(client: FlaskClient, console_db: str) -> None:
    response = sign_in(client, STAFF["dsl"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/incidents")
    assert client.get("/incidents").status_code == 200
    signin = audit_rows(console_db, "console.signin")
    assert [e.actor for e in signin] == ["dina"] and signin[0].detail["address"] == "127.0.0.1"


def test_password_alone_is_not_a_session(client: FlaskClient) -> None:
    page = client.get("/signin")
    client.post("/signin", data={"csrf": csrf_of(page.text), "username": "dina", "password": PASSWORD})
    assert client.get("/incidents").status_code == 302  # still on the TOTP step


def test_a_wrong_or_replayed_code_is_refused(client: FlaskClient, app: Flask) -> None:
    member = STAFF["dsl"]
    wrong = f"{(int(member.code()) + 1) % 1_000_000:06d}"
    assert sign_in(client, member, code=wrong).status_code == 401
    code = member.code()
    assert sign_in(client, member, code=code).status_code == 302
    other = app.test_client()
    assert sign_in(other, member, code=code).status_code == 401  # a code works once


def test_brute_force_locks_the_account(client: FlaskClient, console_db: str) -> None:
    for _ in range(5):
        page = client.get("/signin")
        r = client.post("/signin", data={"csrf": csrf_of(page.text), "username": "dina", "password": "nope"})
        assert r.status_code == 401
    page = client.get("/signin")
    r = client.post("/signin", data={"csrf": csrf_of(page.text), "username": "dina", "password": PASSWORD})
    assert r.status_code == 403 and "locked" in r.text
    assert len(audit_rows(console_db, "console.signin.locked")) == 1
    assert len(audit_rows(console_db, "console.signin.failed")) == 5


def test_wrong_codes_count_towards_the_lockout(client: FlaskClient) -> None:
    member = STAFF["deputy"]
    for _ in range(5):
        assert sign_in(client, member, code="000000").status_code in (401, 302)
    page = client.get("/signin")
    r = client.post("/signin", data={"csrf": csrf_of(page.text), "username": "dan", "password": PASSWORD})
    assert r.status_code == 403


def test_sign_in_is_rate_limited_per_address(console_db: str) -> None:
    from netmon_console.app import ConsoleConfig, create_app

    app = create_app(ConsoleConfig(db_url=console_db, ip_limit=(3, 60.0), lock_after=100))
    client = app.test_client()
    codes = []
    for _ in range(4):
        page = client.get("/signin")
        r = client.post("/signin", data={"csrf": csrf_of(page.text), "username": "zed", "password": "x"})
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 429]
    app.extensions["netmon_console"].engine.dispose()


def test_csrf_without_token_is_refused(client: FlaskClient) -> None:
    client.get("/signin")
    r = client.post("/signin", data={"username": "dina", "password": PASSWORD})
    assert r.status_code == 400
    sign_in(client, STAFF["dsl"])
    assert client.post("/signout", data={}).status_code == 400
    assert client.post("/signout", data={"csrf": "forged" * 8}).status_code == 400
    assert client.get("/incidents").status_code == 200  # still signed in


def test_idle_session_times_out(client: FlaskClient) -> None:
    sign_in(client, STAFF["dsl"])
    with client.session_transaction() as s:
        s["seen"] = time.time() - 16 * 60
    r = client.get("/incidents")
    assert r.status_code == 302 and r.headers["Location"].endswith("/signin")
    assert client.get("/incidents").status_code == 302


def test_a_disabled_account_is_signed_out(client: FlaskClient, console_db: str) -> None:
    sign_in(client, STAFF["dsl"])
    engine = make_engine(console_db)
    with Session(engine) as db, db.begin():
        db.scalars(select(StaffAccount).where(StaffAccount.username == "dina")).one().disabled = True
    engine.dispose()
    assert client.get("/incidents").status_code == 302


def test_roles_without_content_sign_in_with_password_only(client: FlaskClient) -> None:
    r = sign_in(client, STAFF["auditor"])
    assert r.status_code == 200 and "Audit log" in r.text
    assert client.get("/incidents").status_code == 403


def test_security_headers_and_cookie(client: FlaskClient) -> None:
    r = client.get("/signin")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback (tests, the default binding)
    remote = client.get("/signin", base_url="http://console.school.example")
    assert "Secure" in remote.headers["Set-Cookie"]
