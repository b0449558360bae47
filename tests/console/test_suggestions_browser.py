"""Headless Chromium against a real ``netmon console`` (waitress) with a library and an overlay: the DSL
marks a false alarm and sends the suggested exception scoped to the site it fired on; the network admin
approves it with a reason; the console writes the overlay and a running library watcher (the proxy's
reloader) picks it up, after which the same text no longer fires on that site's pages but still does on
another site and when a pupil types it. (tests/e2e/test_console_live_e2e.py does the same through a real
proxy.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from netmon.scan.library import Library, load_library
from netmon.scan.library_watch import LibraryWatcher
from netmon.scan.matching import Matcher
from tests.console.conftest import PASSWORD, STAFF
from tests.console.test_suggestions import TEXT, add, fires, incident_from_scan, make_library
from tests.netmon.test_library_scope import fired
from tests.portal import browser as browser_mod
from tests.portal.browser import Browser

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed"),
]
REPO = Path(__file__).resolve().parents[2]


def _fill(browser: Browser, selector: str, value: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")


def _click(browser: Browser, selector: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def _sign_in(browser: Browser, base: str, who: str) -> None:
    member = STAFF[who]
    browser.navigate(base + "/signin")
    browser.wait_for("!!document.querySelector('#signin')")
    _fill(browser, "#username", member.username)
    _fill(browser, "#password", PASSWORD)
    _click(browser, "#signin")
    if member.secret is not None:
        browser.wait_for("!!document.querySelector('#verify')")
        _fill(browser, "#code", member.code())
        _click(browser, "#verify")
    browser.wait_for("location.pathname === '/incidents'")


def test_false_alarm_suggestion_approved_in_the_browser_stops_firing_live(
    console_db: str, free_port: int, tmp_path: Path
) -> None:
    root, overlay = make_library(tmp_path)
    uid = add(console_db, incident_from_scan(root))
    reloaded: list[Library] = []
    changed = threading.Event()

    def on_change(library: Library) -> None:
        reloaded.append(library)
        changed.set()

    watcher = LibraryWatcher(root, overlay, on_change, lambda message: None, interval=0.2).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netmon", "console", "--port", str(free_port), "--db", console_db,
         "--library", str(root), "--overlay", str(overlay)],
        cwd=REPO, env=dict(os.environ, NETMON_CONSOLE_SECRET="browser-test-secret"),  # noqa: S106
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{free_port}"
    browser = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "netmon console did not start"
            time.sleep(0.2)
        browser = Browser(tmp_path / "profile")
        _sign_in(browser, base, "dsl")
        browser.navigate(f"{base}/incidents/{uid}")
        browser.wait_for("!!document.querySelector('#save')")
        _fill(browser, "#status", "closed")
        _fill(browser, "#outcome", "false_alarm")
        _fill(browser, "#note", "A match report.")
        _click(browser, "#save")
        browser.wait_for("!!document.querySelector('form.suggest')")
        offered = browser.evaluate("document.querySelector('form.suggest input.exception').value")
        assert offered == "will shoot the winning"
        assert (
            browser.evaluate("document.querySelector('form.suggest input[name=scope]:checked').value")
            == "site"
        )
        _click(browser, "form.suggest input[name=scope][value=site]")
        _fill(browser, "form.suggest input[name=reason]", "football")
        _click(browser, "form.suggest button.send-suggestion")
        browser.wait_for("!!document.querySelector('#sent')")
        assert "pending" in browser.evaluate("document.querySelector('#sent').innerText")
        _click(browser, "form.signout button")
        browser.wait_for("location.pathname === '/signin'")

        _sign_in(browser, base, "netadmin")
        browser.navigate(base + "/library")
        browser.wait_for("!!document.querySelector('article.suggestion')")
        card = browser.evaluate("document.querySelector('article.suggestion').innerText")
        assert "will shoot the winning" in card and "sport.example" in card and "alice" not in card
        assert "only on pages of sport.example and its subdomains" in card
        assert not changed.is_set()
        _fill(browser, "article.suggestion input[name=reason]", "a sports word")
        _click(browser, "article.suggestion button.approve")
        browser.wait_for("!!document.querySelector('#done')")
        assert "approved" in browser.evaluate("document.querySelector('#done').innerText")
    finally:
        if browser is not None:
            browser.close()
        proc.terminate()
        proc.wait(timeout=10)
        watcher_ok = changed.wait(10)
        watcher.stop()
    assert (overlay / "en" / "console-violence.txt").is_file()
    assert watcher_ok, "the library watcher did not reload the overlay"
    live = Matcher.compile(reloaded[-1])  # what a running proxy now scans with
    assert fired(live, "http://sport.example/report", TEXT) == []
    assert fired(live, "http://other.example/report", TEXT) == ["shoot"]
    assert fired(live, "http://sport.example/report", TEXT, source="form") == ["shoot"]
    assert fired(live, "http://sport.example/report", "i will shoot you tomorrow") == ["shoot"]
    assert fires(root, overlay, TEXT) and load_library(root, overlay).overlay == str(overlay)
