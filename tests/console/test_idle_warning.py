"""Sign-in errors name their fields (aria-invalid, aria-describedby), and the idle sign-out warning (WCAG
2.2.1): a same-origin script, allowed by the console's CSP, warns before the idle timeout and "Stay signed
in" (a POST with the CSRF token to /keepalive) keeps the session; unanswered, the page ends on sign-in."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from netmon_console.app import ConsoleConfig, create_app
from waitress import create_server

from tests.console.conftest import PASSWORD, STAFF, csrf_of, sign_in
from tests.console.live import browser_sign_in, js
from tests.portal import browser as browser_mod
from tests.portal.browser import Browser

BAD = 'aria-invalid="true" aria-describedby="error"'


def _input(page: str, name: str) -> str:
    match = re.search(rf'<input id="{name}"[^>]*>', page)
    assert match, page
    return match.group(0)


def test_a_wrong_password_or_code_marks_the_fields_and_names_the_error(client: FlaskClient) -> None:
    page = client.get("/signin").text
    assert "aria-invalid" not in page
    wrong = client.post("/signin", data={"csrf": csrf_of(page), "username": "dina", "password": "nope"})
    assert wrong.status_code == 401 and 'id="error"' in wrong.text
    assert BAD in _input(wrong.text, "username") and BAD in _input(wrong.text, "password")
    right = client.post(
        "/signin", data={"csrf": csrf_of(wrong.text), "username": "dina", "password": PASSWORD}
    )
    code_page = client.get(right.headers["Location"]).text
    assert "aria-invalid" not in code_page
    bad_code = client.post("/signin/totp", data={"csrf": csrf_of(code_page), "code": "000000"})
    assert bad_code.status_code == 401 and 'id="error"' in bad_code.text
    assert BAD in _input(bad_code.text, "code")


def test_pages_load_the_idle_script_and_keepalive_needs_csrf_and_a_session(client: FlaskClient) -> None:
    assert "<script" not in client.get("/signin").text  # nobody to sign out yet
    sign_in(client, STAFF["dsl"])
    response = client.get("/incidents")
    scripts = re.findall(r"<script[^>]*>", response.text)
    assert len(scripts) == 1 and 'src="/static/idle.js"' in scripts[0]  # same origin, nothing inline
    assert 'data-idle="900"' in scripts[0] and 'data-warn="120"' in scripts[0]
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "script-src" not in csp
    assert client.get("/static/idle.js").status_code == 200
    assert client.post("/keepalive", data={}).status_code == 400  # no CSRF token
    kept = client.post("/keepalive", data={"csrf": csrf_of(response.text)})
    assert kept.status_code == 200 and kept.json == {"ok": True, "idle_seconds": 900}
    stranger = client.application.test_client()
    token = csrf_of(stranger.get("/signin").text)
    assert stranger.post("/keepalive", data={"csrf": token}).headers["Location"].endswith("/signin")


@pytest.fixture
def short_idle_site(console_db: str) -> Iterator[str]:
    """The console under waitress on a loopback port, signing out after 8 s idle (warning at 4 s)."""
    app = create_app(ConsoleConfig(db_url=console_db, secret_key="idle-test", idle=timedelta(seconds=8)))  # noqa: S106
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)
        app.extensions["netmon_console"].engine.dispose()


@pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed")
def test_idle_warning_offers_to_stay_signed_in_in_chromium(
    short_idle_site: str, tmp_path: Path, db_url: str
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a browser flow; the store is the same on PostgreSQL")
    browser = Browser(tmp_path / "profile")  # the console's own CSP in force: no bypass
    try:
        browser_sign_in(browser, short_idle_site, "dsl")
        signed_in = time.monotonic()
        browser.wait_for(
            "!!document.querySelector('#idle-warning') && document.querySelector('#idle-warning').open"
        )
        shown = browser.evaluate(
            "(d => [d.getAttribute('role'), d.innerText, document.activeElement.id])"
            "(document.querySelector('#idle-warning'))"
        )
        assert shown[0] == "alertdialog" and "You will be signed out soon" in shown[1]
        assert "Stay signed in" in shown[1] and shown[2] == "idle-stay"
        assert time.monotonic() - signed_in < 8  # warned before the timeout
        js(browser, "#idle-stay", "click()")
        browser.wait_for("!document.querySelector('#idle-warning').open")
        time.sleep(max(0.0, signed_in + 9 - time.monotonic()))  # past the first timeout
        browser.navigate(short_idle_site + "/dashboard")
        browser.wait_for("document.readyState === 'complete' && location.pathname !== '/incidents'")
        assert browser.evaluate("location.pathname") == "/dashboard"  # still signed in: kept alive
        # no answer this time: the warning, then the page itself ends on the sign-in page
        browser.wait_for(
            "!!document.querySelector('#idle-warning') && document.querySelector('#idle-warning').open"
        )
        browser.wait_for("location.pathname === '/signin' && document.readyState === 'complete'", timeout=15)
        assert "Your session timed out" in browser.text()
    finally:
        browser.close()
