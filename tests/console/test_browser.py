"""The console in headless Chromium against a real ``netmon console`` (waitress) on a loopback port: sign in
with password and TOTP, triage, open an incident, record an outcome; a hostile capture runs nothing and
fetches nothing (a second loopback server stands in for every other origin and counts what reaches it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from netmon.incidents import queries
from netmon.store.db import make_engine
from tests.console.conftest import HOSTILE, PASSWORD, STAFF, add_incidents, make_incident, snapshot, when
from tests.console.test_auth import audit_rows
from tests.portal import browser as browser_mod
from tests.portal.browser import Browser

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed"),
]
REPO = Path(__file__).resolve().parents[2]


class RecordingBrowser(Browser):
    """The portal tests' Chromium, keeping the DevTools events (network requests) it otherwise skips."""

    def __init__(self, profile: Path) -> None:
        self.events: list[dict[str, Any]] = []
        super().__init__(profile)
        self.send("Network.enable")

    def requested(self) -> list[str]:
        self.evaluate("1")  # collect the events that arrived since the last command
        return [
            e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"
        ]


class Elsewhere:
    """Another origin: a loopback HTTP server that counts every request reaching it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.end_headers()
                self.wfile.write(b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    yield server
    server.close()


@pytest.fixture
def console_server(
    console_db: str, free_port: int, elsewhere: Elsewhere
) -> Iterator[tuple[str, dict[str, str]]]:
    hostile = make_incident(
        time=when(days=2),
        snapshot=snapshot(HOSTILE.replace("{evil}", elsewhere.origin)),
        snapshot_type="text/html",
    )
    older = make_incident(time=when(days=1), severity=4, user="bea", category="bullying", phrase="loser")
    uids = add_incidents(console_db, [hostile, older])
    env = dict(os.environ, NETMON_CONSOLE_SECRET="browser-test-secret")  # noqa: S106
    proc = subprocess.Popen(
        [sys.executable, "-m", "netmon", "console", "--port", str(free_port), "--db", console_db],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{free_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"netmon console did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    server_header = httpx.get(base + "/healthz").headers.get("server", "")
    assert "waitress" in server_header.lower() or "netmon" in server_header.lower()
    yield base, {"hostile": uids[0], "older": uids[1]}
    proc.terminate()
    proc.wait(timeout=10)


def _fill(browser: Browser, selector: str, value: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")


def _click(browser: Browser, selector: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def test_sign_in_triage_review_and_a_hostile_capture(
    console_server: tuple[str, dict[str, str]], elsewhere: Elsewhere, console_db: str, tmp_path: Path
) -> None:
    base, uids = console_server
    member = STAFF["dsl"]
    browser = RecordingBrowser(tmp_path / "profile")
    try:
        browser.navigate(base + "/incidents")
        browser.wait_for("location.pathname === '/signin' && !!document.querySelector('#signin')")
        _fill(browser, "#username", member.username)
        _fill(browser, "#password", PASSWORD)
        _click(browser, "#signin")
        browser.wait_for("location.pathname === '/signin/totp' && !!document.querySelector('#verify')")
        browser.navigate(base + "/incidents")  # the password alone opens nothing
        browser.wait_for("location.pathname === '/signin' && !!document.querySelector('#signin')")
        _fill(browser, "#username", member.username)
        _fill(browser, "#password", PASSWORD)
        _click(browser, "#signin")
        browser.wait_for("!!document.querySelector('#verify')")
        _fill(browser, "#code", member.code())
        _click(browser, "#verify")
        browser.wait_for("location.pathname === '/incidents' && !!document.querySelector('a.open')")
        rows = browser.evaluate("[...document.querySelectorAll('tbody tr')].map(r => r.innerText)")
        assert len(rows) == 2 and rows[0].startswith("5") and rows[1].startswith("4")  # most severe first
        assert "new 2" in browser.evaluate("document.querySelector('#tab-new').innerText")
        _click(browser, "a.open")
        browser.wait_for(
            f"location.pathname === '/incidents/{uids['hostile']}' && document.readyState === 'complete'"
        )
        browser.wait_for("!!document.querySelector('#capture')")
        time.sleep(1.5)  # let the frame load and anything in it try its luck
        assert "library/en/suicide.txt:12" in browser.text()
        requested = browser.requested()  # the page's own requests (the sandboxed frame may run apart)
        assert not [u for u in requested if elsewhere.origin in u], requested
        assert elsewhere.hits == []
        assert browser.evaluate("location.pathname") == f"/incidents/{uids['hostile']}"  # no top navigation
        _fill(browser, "#status", "closed")
        _fill(browser, "#outcome", "referred_dsl")
        _fill(browser, "#note", "Spoke to the pupil; DSL informed.")
        _click(browser, "#save")
        browser.wait_for("(document.querySelector('#state') || {innerText: ''}).innerText.includes('closed')")
        assert "Spoke to the pupil" in browser.evaluate("document.querySelector('#history').innerText")
        time.sleep(0.5)
        assert elsewhere.hits == []
    finally:
        browser.close()
    engine = make_engine(console_db)
    with Session(engine) as db:
        found = queries.incident_by_uid(db, uids["hostile"])
        assert found is not None
        state = queries.review_state(db, found.id)
    engine.dispose()
    assert state.status == "closed" and state.outcome == "referred_dsl" and state.history[-1].actor == "dina"
    views = [e for e in audit_rows(console_db, "console.capture.view") if e.subject == uids["hostile"]]
    assert views and {e.actor for e in views} == {"dina"}  # the frame was served to the signed-in session


def test_the_capture_policy_alone_stops_raw_hostile_markup(elsewhere: Elsewhere, tmp_path: Path) -> None:
    """Defence in depth: even unsanitised, a page under the capture's CSP in a sandboxed frame runs and
    fetches nothing."""
    from netmon_console.capture import CAPTURE_CSP

    raw = HOSTILE.replace("{evil}", elsewhere.origin).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = raw if self.path == "/capture" else b'<iframe sandbox src="/capture"></iframe>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            if self.path == "/capture":
                self.send_header("Content-Security-Policy", CAPTURE_CSP)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = RecordingBrowser(tmp_path / "profile")
    try:
        browser.navigate(f"http://127.0.0.1:{server.server_address[1]}/")
        browser.wait_for("document.readyState === 'complete' && !!document.querySelector('iframe')")
        time.sleep(2)
        assert elsewhere.hits == []
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
