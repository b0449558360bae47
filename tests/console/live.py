"""A real ``netmon console`` (waitress) on a loopback port over a store of invented incidents, and signing
in to it in headless Chromium. Used by tests/console/test_accessibility.py and docs/screenshots.py.

Every name, host and text here is invented: no real pupil appears in a test or a screenshot."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from netmon_console.app import ConsoleConfig, create_app

from tests.console.conftest import (
    PASSWORD,
    STAFF,
    add_incidents,
    add_staff,
    csrf_of,
    make_incident,
    sign_in,
    snapshot,
)
from tests.console.test_suggestions import add, false_alarm, incident_from_scan, make_library, suggest
from tests.portal.browser import Browser

REPO = Path(__file__).resolve().parents[2]
DEMO_PAGE = (
    "<html><body><h1>Year 9 forum (demo page)</h1><p>posted by a made-up user</p>"
    "<p>nobody would miss me if i was gone, i want to kill myself</p><p>reply: please talk to someone</p>"
    "</body></html>"
)
# (days ago, severity, category, phrase, pupil, year, groups, host, source, excerpt)
DEMO = [
    (0.1, 5, "suicide", "kill myself", "demo.ava", "Y9", ["9A"], "forum.example", "page",
     "…nobody would miss me if i was gone, i want to [[kill myself]]…"),
    (0.3, 4, "self-harm", "cut myself", "demo.ben", "Y10", ["10B", "art"], "search.example", "search",
     "how to hide that i [[cut myself]]"),
    (0.5, 4, "bullying", "nobody likes you", "demo.cal", "Y8", ["8C"], "chat.example", "websocket",
     "…lol [[nobody likes you]] just leave…"),
    (1.2, 3, "violence", "bring a knife", "demo.dee", "Y11", ["11A"], "chat.example", "form",
     "…gonna [[bring a knife]] tomorrow…"),
    (2.0, 3, "drugs", "buy weed", "demo.eli", "Y10", ["10A"], "search.example", "search",
     "where to [[buy weed]] near me"),
    (3.5, 2, "gambling", "free spins", "demo.fay", "Y12", ["12S"], "games.example", "page",
     "…claim 50 [[free spins]] now…"),
    (9.0, 2, "adult", "explicit", "demo.gus", "Y13", ["13P"], "video.example", "page",
     "…[[explicit]] clips…"),
    (16.0, 4, "extremism", "join the fight", "demo.hal", "Y11", ["11B"], "video.example", "page",
     "…brothers [[join the fight]]…"),
    (23.0, 5, "suicide", "end it all", "demo.ava", "Y9", ["9A"], "search.example", "search",
     "ways to [[end it all]]"),
]  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_demo(url: str, base: Path, now: datetime | None = None) -> dict[str, str]:
    """Fill the migrated, empty store at ``url`` with staff accounts and invented incidents, a small library
    and overlay under ``base`` (``base/library``, ``base/overlay``), one false alarm with a pending library
    suggestion (made by the deputy DSL through the real forms) and a review history. Returns named uids."""
    now = now or datetime.now(UTC)
    add_staff(url)
    root, overlay = make_library(base)
    incidents = []
    for days, sev, cat, phrase, pupil, year, groups, host, source, excerpt in DEMO:
        t = now - timedelta(days=days)
        incidents.append(
            make_incident(
                time=t, last_seen=t + timedelta(minutes=4), count=2 if days < 1 else 1, severity=sev,
                category=cat, phrase=phrase, user=pupil, year_group=year, groups=groups, host=host,
                url=f"https://{host}/t/{int(days * 10)}", source=source, excerpt=excerpt,
                phrases=[{"phrase": phrase, "category": cat, "severity": sev, "matches": 1}],
                client_ip=f"10.20.0.{int(days * 10) + 5}",
                snapshot=snapshot(DEMO_PAGE) if days == DEMO[0][0] else None,
                snapshot_type="text/html" if days == DEMO[0][0] else None,
            )
        )  # fmt: skip
    uids = add_incidents(url, incidents)
    sport = incident_from_scan(root)
    sport.time = sport.last_seen = now - timedelta(days=4)
    sport.user = "demo.ivy"
    false_uid = add(url, sport)
    app = create_app(ConsoleConfig(db_url=url, secret_key="seed", library_root=root, overlay=overlay))  # noqa: S106
    client = app.test_client()
    sign_in(client, STAFF["deputy"])
    page = false_alarm(client, false_uid)
    suggest(
        client, false_uid, page, exception="will shoot the winning", scope="site", reason="a match report"
    )
    page = client.get(f"/incidents/{uids[3]}").text
    data = {
        "csrf": csrf_of(page),
        "status": "in_review",
        "outcome": "",
        "assignee": "",
        "note": "Spoke to tutor.",
    }
    assert client.post(f"/incidents/{uids[3]}/review", data=data).status_code == 302
    app.extensions["netmon_console"].engine.dispose()
    return {"top": uids[0], "reviewed": uids[3], "false_alarm": false_uid}


@contextmanager
def live_console(url: str, base: Path) -> Iterator[str]:
    """``netmon console`` under waitress on a free loopback port (library and overlay under ``base``);
    yields its base URL and stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netmon", "console", "--port", str(port), "--db", url,
         "--library", str(base / "library"), "--overlay", str(base / "overlay")],
        cwd=REPO, env=dict(os.environ, NETMON_CONSOLE_SECRET="live-console-secret"),  # noqa: S106
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    site = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(site + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"netmon console did not start: {proc.stderr.read() if proc.stderr else ''}"
                )
            time.sleep(0.2)
        yield site
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def js(browser: Browser, selector: str, action: str) -> object:
    return browser.evaluate(f"document.querySelector({json.dumps(selector)}).{action}")


def browser_sign_in(browser: Browser, site: str, who: str, code_offset: int = 0) -> None:
    """Sign ``who`` (a key of STAFF) in through the forms; ends on the queue."""
    member = STAFF[who]
    browser.navigate(site + "/signin")
    browser.wait_for("!!document.querySelector('#signin')")
    js(browser, "#username", f"value = {json.dumps(member.username)}")
    js(browser, "#password", f"value = {json.dumps(PASSWORD)}")
    js(browser, "#signin", "click()")
    if member.secret is not None:
        browser.wait_for("!!document.querySelector('#verify')")
        js(browser, "#code", f"value = {json.dumps(member.code(code_offset))}")
        js(browser, "#verify", "click()")
    browser.wait_for("location.pathname === '/incidents' && document.readyState === 'complete'")


def set_width(browser: Browser, width: int, height: int = 800, mobile: bool = False) -> None:
    """Lay the page out at ``width`` CSS pixels (a phone when ``mobile``)."""
    browser.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
    )


def load(browser: Browser, url: str) -> None:
    browser.navigate(url)
    browser.wait_for(
        f"location.href === {json.dumps(url)} && document.readyState === 'complete' && !!document.body"
    )
