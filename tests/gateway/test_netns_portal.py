"""The whole device path through the gateway with the captive portal on: sign-in first, then incidents
that name the pupil and the device's address; pinned apps keep working; the doctor is content."""

from __future__ import annotations

import html
import json
import re
import sys
import time

import pytest

from tests.gateway import netns
from tests.gateway.conftest import PORTAL_PORT, PORTAL_URL, PROXY_PORT, PUPIL, PUPIL_PASSWORD, Gateway
from tests.gateway.test_netns import _passthrough_events

pytestmark = [pytest.mark.netns, pytest.mark.e2e]

WITH_PORTAL = True


def _field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field in the portal page"
    return html.unescape(match.group(1))


def _sign_in(gateway: Gateway) -> None:
    jar = str(gateway.workdir / "cookies.txt")
    # before sign-in, plain HTTP is sent to the portal (which remembers where the pupil was going)
    first = gateway.curl("http://news.example/benign.html", "-i", "-c", jar, "-b", jar)
    assert first.returncode == 0, first.stderr
    status_line = first.stdout.splitlines()[0]
    assert re.search(r" 30[237] ", status_line), status_line
    location = re.search(r"(?im)^location: (\S+)", first.stdout)
    assert location and location.group(1).startswith(PORTAL_URL)
    page = gateway.curl(location.group(1), "-c", jar, "-b", jar)
    assert page.returncode == 0 and "password" in page.stdout
    posted = gateway.curl(
        f"{PORTAL_URL}signin",
        "-i",
        "-c",
        jar,
        "-b",
        jar,
        "--data-urlencode",
        f"csrf={_field(page.stdout, 'csrf')}",
        "--data-urlencode",
        f"next={_field(page.stdout, 'next')}",
        "--data-urlencode",
        f"sig={_field(page.stdout, 'sig')}",
        "--data-urlencode",
        f"username={PUPIL}",
        "--data-urlencode",
        f"password={PUPIL_PASSWORD}",
        "--data-urlencode",
        "accept=yes",
    )
    assert posted.returncode == 0, posted.stderr
    assert " 303 " in posted.stdout.splitlines()[0], posted.stdout[:500]
    assert "news.example/benign.html" in posted.stdout  # sent on to where it was going


@pytest.fixture(scope="module")
def signed_in(gateway: Gateway) -> Gateway:
    _sign_in(gateway)
    # the proxy reads sessions from a snapshot refreshed every 200 ms here
    for _ in range(50):
        if "Opening times" in gateway.curl("http://news.example/benign.html").stdout:
            return gateway
        time.sleep(0.2)
    raise AssertionError("the proxy never saw the sign-in")


def test_before_sign_in_https_is_refused_cleanly_not_hung(gateway: Gateway) -> None:
    result = gateway.curl("https://quiet.example/echo", "-o", "/dev/null", "-w", "%{http_code} %{time_total}")
    code, seconds = result.stdout.split()
    assert code == "511" and float(seconds) < 5


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_phrase_page_gives_an_incident_with_device_address_and_user(signed_in: Gateway, scheme: str) -> None:
    url = f"{scheme}://news.example/phrase.html?via=gateway-{scheme}"
    page = signed_in.curl(url)
    assert page.returncode == 0 and "kill myself" in page.stdout
    rows = signed_in.incidents(lambda rows: any(r["url"] == url for r in rows))
    (incident,) = [r for r in rows if r["url"] == url]
    assert incident["client_ip"] == netns.DEVICE_V4
    assert incident["user"] == PUPIL
    assert incident["year_group"] == "9"
    assert incident["host"] == "news.example"  # the name, not the transparent-mode address
    assert incident["severity"] >= 4


def test_signed_in_device_without_the_ca_passes_through_after_one_failure(signed_in: Gateway) -> None:
    assert signed_in.curl("https://pinned.example/echo", trust="internet").returncode == 60
    seen = json.loads(signed_in.curl("https://pinned.example/echo", trust="internet").stdout)
    assert seen["sni"] == "pinned.example"
    expected = (netns.DEVICE_V4, "pinned.example", "refused-before")
    assert expected in _passthrough_events(signed_in, expected)


def test_doctor_is_content_with_the_running_gateway(signed_in: Gateway) -> None:
    lab = signed_in.lab
    result = lab.exec(
        lab.gateway,
        sys.executable,
        "-m",
        "netmon",
        "doctor",
        "--json",
        "--interface",
        netns.PUPIL_IF,
        "--proxy-port",
        str(PROXY_PORT),
        "--portal-port",
        str(PORTAL_PORT),
        "--db",
        signed_in.db_url,
        "--state-dir",
        str(signed_in.state_dir),
        "--confdir",
        str(signed_in.confdir),
        check=False,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    for name in ("forwarding", "rules", "proxy", "portal", "ca", "database", "interception-ca"):
        assert checks[name]["status"] == "ok", checks[name]
    mismatch = lab.exec(
        lab.gateway,
        sys.executable,
        "-m",
        "netmon",
        "doctor",
        "--json",
        "--interface",
        "wlan9",
        "--proxy-port",
        str(PROXY_PORT),
        "--state-dir",
        str(signed_in.state_dir),
        check=False,
        timeout=120,
    )
    assert mismatch.returncode == 1
    rules = {c["name"]: c for c in json.loads(mismatch.stdout)}["rules"]
    assert rules["status"] == "fail" and "wlan9" in rules["message"]


def test_portal_serves_the_pac_file_for_the_explicit_proxy_alternative(gateway: Gateway) -> None:
    shipped = (netns.REPO / "deploy" / "pac" / "proxy.pac").read_text()
    for path in ("proxy.pac", "wpad.dat"):
        result = gateway.curl(f"{PORTAL_URL}{path}", "-i")
        assert result.returncode == 0, result.stderr
        head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
        assert "application/x-ns-proxy-autoconfig" in head
        assert body == shipped
