"""The whole chain (addons/entry.py: identity, gate, scanners, recorder) in headless Chromium: an incident
from a pupil's browser names the pupil; an incident from a device without a session still records its IP."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.portal import browser as browser_mod
from tests.portal.browser import Browser
from tests.portal.ldap_server import LdapServer
from tests.portal.stack import FULL_CHAIN, NETMON, REPO, Stack, start_stack
from tests.portal.test_browser import sign_in_in_browser

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed"),
]


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory: pytest.TempPathFactory, slapd: LdapServer) -> Iterator[Stack]:
    from tests.portal.conftest import ROSTER

    root = tmp_path_factory.mktemp("portal-full")
    roster = root / "roster.csv"
    roster.write_text(ROSTER)
    running = start_stack(root, roster, slapd, FULL_CHAIN)
    yield running
    running.close()


def incidents(stack: Stack, predicate, timeout: float = 30.0) -> list[dict]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        out = subprocess.run(
            [*NETMON, "export", "--db", stack.db_url, "--format", "jsonl"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        if predicate(rows):
            return rows
        time.sleep(0.5)
    return rows


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        (
            "alice",
            "alice-pass-1",
            {"user": "alice", "role": "pupil", "year_group": "Y9", "groups": ["9A", "art"]},
        ),
        ("carol", "carol-ldap-1", {"user": "carol", "role": "pupil", "year_group": "Y10", "groups": ["10B"]}),
    ],
)
def test_incident_from_the_browser_names_the_pupil(
    full_stack: Stack, tmp_path: Path, username: str, password: str, expected: dict[str, object]
) -> None:
    full_stack.sign_everyone_out()
    browser = Browser(tmp_path / "profile", proxy=full_stack.proxy)
    try:
        page = f"http://pages.test/phrase.html?who={username}"
        browser.navigate(page)
        browser.wait_for(f"location.href.startsWith({json.dumps(full_stack.portal_url)})")
        sign_in_in_browser(browser, username, password)
        browser.wait_for(f"location.href === {json.dumps(page)} && document.readyState === 'complete'")
        assert "kill myself" in browser.text()
    finally:
        browser.close()
    rows = incidents(full_stack, lambda rows: any(f"who={username}" in r.get("url", "") for r in rows))
    mine = [r for r in rows if f"who={username}" in r.get("url", "")]
    assert mine, f"no incident for {username}: {rows}"
    row = mine[0]
    assert {k: row.get(k) for k in expected} == expected
    assert row["client_ip"] == "127.0.0.1"
