"""The pupil's whole path in headless Chromium through a real mitmdump and the real portal service.

The device's first request is redirected to the portal, the AUP is shown, the pupil signs in (local
account or the school's LDAP directory) and lands on the page they asked for; from then on the proxy tags
their traffic. OS captive-portal checks answer "captive" before and "online" after sign-in; HTTPS from an
unsigned device is refused at once; bad passwords, CSRF-less posts, open redirects and bursts are refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netmon.identity.probes import APPLE_SUCCESS, PROBES
from tests.portal import browser as browser_mod
from tests.portal.browser import Browser
from tests.portal.ldap_server import LdapServer
from tests.portal.stack import GATE_ONLY, Stack, start_stack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed"),
]

PAGE = "http://pages.test/benign.html"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, slapd: LdapServer) -> Iterator[Stack]:
    from tests.portal.conftest import ROSTER

    root = tmp_path_factory.mktemp("portal-e2e")
    roster = root / "roster.csv"
    roster.write_text(ROSTER)
    running = start_stack(root, roster, slapd, GATE_ONLY)
    yield running
    running.close()


@pytest.fixture
def signed_out(stack: Stack) -> Stack:
    stack.sign_everyone_out()
    return stack


@pytest.fixture
def chromium(tmp_path: Path, signed_out: Stack) -> Iterator[Browser]:
    browser = Browser(tmp_path / "profile", proxy=signed_out.proxy)
    yield browser
    browser.close()


def sign_in_in_browser(browser: Browser, username: str, password: str) -> None:
    browser.wait_for("document.getElementById('signin') !== null")
    browser.evaluate(
        f"document.getElementById('username').value = {json.dumps(username)};"
        f"document.getElementById('password').value = {json.dumps(password)};"
        "document.getElementById('signin').requestSubmit(); true"
    )


def tagged_user(browser: Browser) -> dict[str, object] | None:
    """The identity the proxy attached to a request from this page (shown by the test echo script)."""
    header = browser.evaluate(
        "fetch(location.href, {cache: 'no-store'}).then(r => r.headers.get('x-netmon-test-user'))"
    )
    return json.loads(header) if header else None


def test_first_request_goes_to_the_portal_and_local_sign_in_reaches_the_page(
    chromium: Browser, stack: Stack
) -> None:
    chromium.navigate(PAGE)
    chromium.wait_for(f"location.href.startsWith({json.dumps(stack.portal_url)})")
    assert "next=" in chromium.url()
    chromium.wait_for("document.readyState === 'complete' && document.getElementById('aup') !== null")
    text = chromium.text()
    assert "School Wi-Fi Acceptable Use Policy" in text and "2026-09" in text
    sign_in_in_browser(chromium, "alice", "alice-pass-1")
    chromium.wait_for(f"location.href === {json.dumps(PAGE)} && document.readyState === 'complete'")
    assert "Water evaporates" in chromium.text()
    assert tagged_user(chromium) == {
        "user": "alice",
        "role": "pupil",
        "year_group": "Y9",
        "groups": ["9A", "art"],
        "mac": None,
    }
    listing = stack.netmon("sessions")
    assert "alice" in listing.stdout and "127.0.0.1" in listing.stdout


def test_ldap_sign_in_in_welsh(chromium: Browser, stack: Stack) -> None:
    chromium.navigate("http://pages.test/benign.html?lang=x")
    chromium.wait_for(f"location.href.startsWith({json.dumps(stack.portal_url)})")
    chromium.evaluate("document.querySelector('nav.lang a[lang=cy]').click(); true")
    chromium.wait_for("document.documentElement.lang === 'cy' && document.getElementById('signin') !== null")
    assert "Polisi Defnydd Derbyniol" in chromium.text()
    sign_in_in_browser(chromium, "dave", "dave-ldap-1")  # only in the directory
    chromium.wait_for("location.href === 'http://pages.test/benign.html?lang=x'")
    user = tagged_user(chromium)
    assert user is not None and user["user"] == "dave" and user["role"] == "staff"


def test_bad_password_stays_on_the_portal(chromium: Browser, stack: Stack) -> None:
    chromium.navigate(PAGE)
    chromium.wait_for(f"location.href.startsWith({json.dumps(stack.portal_url)})")
    sign_in_in_browser(chromium, "alice", "not-her-password")
    chromium.wait_for("document.getElementById('error') !== null")
    assert "Wrong username or password" in chromium.text()
    with stack.client() as client:
        assert client.get(PAGE).status_code == 302  # still not signed in


def test_open_redirect_through_the_portal_is_refused(chromium: Browser, stack: Stack) -> None:
    chromium.navigate(f"{stack.portal_url}?next=http%3A%2F%2Fforum.test%2Fphish&sig=deadbeef")
    chromium.wait_for("document.getElementById('signin') !== null")
    sign_in_in_browser(chromium, "alice", "alice-pass-1")
    chromium.wait_for("document.getElementById('welcome') !== null")
    assert chromium.url().startswith(stack.portal_url) and "forum.test" not in chromium.url()
    # the welcome page offers the CA and reports that this browser does not trust it
    assert chromium.wait_for("document.getElementById('trust').dataset.trusted") == "no"


def test_trust_check_reports_a_trusting_device(tmp_path: Path, signed_out: Stack) -> None:
    browser = Browser(
        tmp_path / "trusting", proxy=signed_out.proxy, extra_args=("--ignore-certificate-errors",)
    )
    try:
        browser.navigate(f"{signed_out.portal_url}ca")
        assert browser.wait_for("document.getElementById('trust').dataset.trusted") == "yes"
        assert "iPhone and iPad" in browser.text()
    finally:
        browser.close()


def test_https_from_unsigned_device_is_refused_at_once(chromium: Browser, stack: Stack) -> None:
    started = time.monotonic()
    chromium.navigate("https://pages.test/benign.html")
    chromium.wait_for("document.readyState === 'complete'", timeout=10)
    assert time.monotonic() - started < 8
    assert "Water evaporates" not in chromium.text()
    with stack.client() as client:
        started = time.monotonic()
        with pytest.raises(httpx.ProxyError, match="511"):
            client.get("https://pages.test/benign.html")
        assert time.monotonic() - started < 3


def test_os_probes_before_and_after_sign_in(signed_out: Stack) -> None:
    stack = signed_out
    with stack.client() as client:
        for probe in PROBES:
            path = "/hotspot-detect.html" if probe.path == "*" else probe.path
            response = client.get(f"http://{probe.host}{path}")
            assert response.status_code == 302, probe
            assert response.headers["location"] == stack.portal_url
    browser_sign_in_by_http(stack, "alice", "alice-pass-1")
    with stack.client() as client:
        for probe in PROBES:
            path = "/hotspot-detect.html" if probe.path == "*" else probe.path
            response = client.get(f"http://{probe.host}{path}")
            assert (response.status_code, response.content) == (probe.status, probe.body), probe
        assert client.get("http://captive.apple.com/hotspot-detect.html").content == APPLE_SUCCESS
        api = httpx.get(f"{stack.portal_url}api/captive").json()
        assert api["captive"] is False


def browser_sign_in_by_http(stack: Stack, username: str, password: str) -> None:
    """Sign in the way a captive-portal sheet does (plain form post with its cookie and token)."""
    import re

    with httpx.Client(base_url=stack.portal_url, timeout=10) as portal:
        token = re.search(r'name="csrf" value="([^"]+)"', portal.get("/").text).group(1)  # type: ignore[union-attr]
        response = portal.post(
            "/signin", data={"csrf": token, "username": username, "password": password, "accept": "yes"}
        )
        assert response.status_code == 303, response.text
    time.sleep(0.8)


def test_a_new_aup_version_sends_everyone_back_to_accept_it(signed_out: Stack) -> None:
    stack = signed_out
    browser_sign_in_by_http(stack, "alice", "alice-pass-1")
    with stack.client() as client:
        assert client.get(PAGE).status_code == 200
        meta = stack.aup_dir / "aup.yaml"
        original = meta.read_text()
        meta.write_text(original.replace('version: "2026-09"', 'version: "2027-01"'))
        try:
            deadline = time.monotonic() + 15
            while client.get(PAGE).status_code != 302:  # nobody opened the portal: it notices by itself
                assert time.monotonic() < deadline, "the new AUP version did not end the session"
                time.sleep(0.3)
            page = httpx.get(stack.portal_url).text
            assert 'id="aup-version">2027-01<' in page
            browser_sign_in_by_http(stack, "alice", "alice-pass-1")
            assert client.get(PAGE).status_code == 200
        finally:
            meta.write_text(original)


# keep last: the burst leaves 127.0.0.1 rate-limited for a minute
def test_csrf_less_post_and_burst_are_refused(signed_out: Stack) -> None:
    stack = signed_out
    response = httpx.post(
        f"{stack.portal_url}signin", data={"username": "alice", "password": "alice-pass-1", "accept": "yes"}
    )
    assert response.status_code == 400 and "Traceback" not in response.text
    codes = []
    with httpx.Client(base_url=stack.portal_url, timeout=10) as portal:
        import re

        token = re.search(r'name="csrf" value="([^"]+)"', portal.get("/").text).group(1)  # type: ignore[union-attr]
        for _ in range(30):
            codes.append(
                portal.post(
                    "/signin", data={"csrf": token, "username": "mallory", "password": "x", "accept": "yes"}
                ).status_code
            )
    assert 429 in codes
    with stack.client() as client:
        assert client.get(PAGE).status_code == 302
