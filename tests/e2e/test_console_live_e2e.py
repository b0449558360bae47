"""The library learns from the DSL, live: a real ``netmon run`` (mitmdump with netmon's addons) and a real
``netmon console`` on the same SQLite store, a client fetching pages through the proxy, and the DSL and
the network admin in headless Chromium.

A computing-club page on one site fires a false alarm; the DSL signs in with a TOTP code, records the outcome
false alarm and sends the suggested exception scoped to that site; the network admin approves it; the
console writes the host-scoped line into the school's overlay and the running proxy's library watcher
reloads it. Fetched again through the proxy, the same page raises no new incident, while the same page
on another site still does, and so do the same words posted by a pupil on the quieted site; a request
that names the quieted site in its Host header but goes to the other one is refused (421), so the scope
follows the verified host."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.console.conftest import STAFF, add_staff
from tests.console.test_suggestions_browser import _click, _fill, _sign_in
from tests.e2e.conftest import NETMON, REPO, Proxy, free_tcp_port, start_proxy, wait_for_port
from tests.e2e.upstream import Page, Upstream
from tests.portal import browser as browser_mod
from tests.portal.browser import Browser

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed"),
]

PHRASE = "loot boxes"  # gambling, severity 2 in the shipped library: recorded for every device
FILM = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Computing club</title></head><body>"
    b"<p>This week's quiz asked which game lets you buy loot boxes with gems, then we discussed the"
    b" maths of chance.</p></body></html>"
)
QUIET, OTHER = "pages.test", "forum.test"  # both routed to the test upstream on loopback


@pytest.fixture
def live(upstream: Upstream, tmp_path: Path) -> Iterator[tuple[Proxy, str, Path]]:
    """The proxy (with an overlay) and the console on its store; yields (proxy, console URL, overlay)."""
    upstream.pages["/club.html"] = Page(FILM)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (tmp_path / "netmon").mkdir()
    proxy = start_proxy(tmp_path / "netmon", upstream, "--overlay", str(overlay))
    console = None
    try:
        add_staff(proxy.db_url)  # the proxy has migrated the store
        port = free_tcp_port()
        console = subprocess.Popen(
            [*NETMON, "console", "--port", str(port), "--db", proxy.db_url, "--overlay", str(overlay)],
            cwd=REPO, env={**os.environ, "NETMON_CONSOLE_SECRET": "live-e2e-secret"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for_port(port, proc=console)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while httpx.get(base + "/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "netmon console is not healthy"
            time.sleep(0.2)
        yield proxy, base, overlay
    finally:
        if console is not None:
            console.terminate()
            console.wait(timeout=15)
        proxy.stop()


def fetch(proxy: Proxy, host: str) -> None:
    with proxy.client() as client:
        response = client.get(f"http://{host}/club.html")
    assert response.status_code == 200 and PHRASE in response.text  # the pupil's page is untouched


def post(proxy: Proxy, host: str, text: str) -> None:
    with proxy.client() as client:
        assert client.post(f"http://{host}/comment", data={"comment": text}).status_code == 200


def of(rows: list[dict], host: str, source: str = "page") -> list[dict]:
    return [r for r in rows if r["host"] == host and r["source"] == source]


def reloads(proxy: Proxy) -> int:
    return proxy.log().count("phrase library reloaded")


def test_site_scoped_false_alarm_approved_in_the_console_quiets_that_site_live(
    live: tuple[Proxy, str, Path], tmp_path: Path
) -> None:
    proxy, base, overlay = live
    fetch(proxy, QUIET)
    rows = proxy.wait_incidents(lambda rows: of(rows, QUIET))
    (incident,) = of(rows, QUIET)
    assert incident["phrase"] == PHRASE and incident["count"] == 1
    uid = incident["uid"]

    browser = Browser(tmp_path / "profile")
    try:
        _sign_in(browser, base, "dsl")  # password, then the TOTP code
        browser.navigate(f"{base}/incidents/{uid}")
        browser.wait_for("!!document.querySelector('#save')")
        _fill(browser, "#status", "closed")
        _fill(browser, "#outcome", "false_alarm")
        _fill(browser, "#note", "A club quiz page, not a pupil gambling.")
        _click(browser, "#save")
        browser.wait_for("!!document.querySelector('form.suggest')")
        form = "form.suggest"
        offered = browser.evaluate(f"document.querySelector('{form} input.exception').value")
        assert PHRASE in offered
        scopes = browser.evaluate(
            f"[...document.querySelectorAll('{form} input[name=scope]')].map(e => e.value + ':' + e.checked)"
        )
        assert scopes == ["site:true", "page:false", "everywhere:false"]
        assert f"pages of {QUIET} and its subdomains" in browser.evaluate(
            f"document.querySelector('{form} fieldset.scope').innerText"
        )
        _click(browser, f"{form} input[name=kind][value=exception]")
        _click(browser, f"{form} input[name=scope][value=site]")
        _fill(browser, f"{form} input[name=reason]", "the club pages discuss games")
        _click(browser, f"{form} button.send-suggestion")
        browser.wait_for("!!document.querySelector('#sent')")
        sent = browser.evaluate("document.querySelector('#sent').innerText")
        assert "pending" in sent and f"only on pages of {QUIET}" in sent
        _click(browser, "form.signout button")
        browser.wait_for("location.pathname === '/signin'")

        before = reloads(proxy)
        _sign_in(browser, base, "netadmin")
        browser.navigate(base + "/library")
        browser.wait_for("!!document.querySelector('article.suggestion')")
        card = browser.evaluate("document.querySelector('article.suggestion').innerText")
        assert f"only on pages of {QUIET} and its subdomains" in card and offered in card
        assert STAFF["dsl"].username in card and "maths of chance" not in card  # no capture
        _fill(browser, "article.suggestion input[name=reason]", "a quoting site")
        _click(browser, "article.suggestion button.approve")
        browser.wait_for("!!document.querySelector('#done')")
        assert "approved" in browser.evaluate("document.querySelector('#done').innerText")
    finally:
        browser.close()

    written = (overlay / "en" / "console-gambling.txt").read_text(encoding="utf-8")
    assert f"{PHRASE} | on: {QUIET}; unless: {offered}" in written
    deadline = time.monotonic() + 30
    while reloads(proxy) <= before:  # the running proxy's library watcher picks the file up
        assert time.monotonic() < deadline, f"the proxy did not reload the overlay:\n{proxy.log()}"
        time.sleep(0.2)

    fetch(proxy, QUIET)  # the same page again: quiet now
    fetch(proxy, OTHER)  # the same page on another site: still an incident
    post(proxy, QUIET, "where can i buy loot boxes cheap")  # a pupil typing the words on the quieted site
    with proxy.client() as client:  # a forged Host cannot borrow the quieted site's scope: refused
        forged = client.get(f"http://{OTHER}/club.html", headers={"Host": QUIET})
    assert forged.status_code == 421 and PHRASE not in forged.text
    rows = proxy.wait_incidents(lambda rows: of(rows, OTHER) and of(rows, QUIET, "form"))
    assert [r["phrase"] for r in of(rows, OTHER)] == [PHRASE]
    assert PHRASE in [r["phrase"] for r in of(rows, QUIET, "form")]
    time.sleep(1.0)  # the quieted fetch went first; give any late result time to land
    rows = proxy.export()
    assert [(r["uid"], r["count"]) for r in of(rows, QUIET)] == [(uid, 1)]
