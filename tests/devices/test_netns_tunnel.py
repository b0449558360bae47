"""End to end in network namespaces: real WireGuard (wireguard-go + wg) from a home to the gateway.

A home brings up an enrolled device's tunnel; its web traffic reaches a server through the gateway's
transparent proxy (a real mitmdump), which names the device and its user from the tunnel address; DNS to
any address is answered by the school's resolver; QUIC and other ports are refused; a revoked device
cannot complete a handshake nor reach anything, while another device goes on working.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devices import wglab

pytestmark = [pytest.mark.netns, pytest.mark.e2e]

DNS_QUERY = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)\n"
    "q=bytes.fromhex('beef01000001000000000000')+b'\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01'\n"
    "s.sendto(q,(sys.argv[1],53)); r=s.recv(512)\n"
    "print(r[:2].hex(), socket.inet_ntoa(r[-4:]))\n"
)
REFUSED = (
    "import socket,sys,time\n"
    "kind,host,port=sys.argv[1],sys.argv[2],int(sys.argv[3]); t=time.monotonic()\n"
    "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind=='udp' else socket.SOCK_STREAM)\n"
    "s.settimeout(3)\n"
    "try:\n"
    "    s.connect((host,port))\n"
    "    if kind=='udp':\n"
    "        s.send(b'x'); s.recv(10)\n"
    "    print('open')\n"
    "except ConnectionRefusedError: print('refused', round(time.monotonic()-t,3))\n"
    "except OSError as e:\n"
    "    print('refused' if e.errno in (113, 13) else 'error', round(time.monotonic()-t, 3))\n"
)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[wglab.WgLab]:
    reason = wglab.unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = wglab.WgLab(tmp_path, homes=2)
    try:
        lab.create()
        yield lab
    finally:
        lab.destroy()


def _roster(lab: wglab.WgLab) -> None:
    roster = lab.workdir / "roster.csv"
    roster.write_text(
        "username,display_name,role,year_group,groups,password\n"
        "alice,Alice A,pupil,9,year9;form9b,\nbob,Bob B,pupil,10,year10,\n"
    )
    lab.netmon("users", "import", str(roster))


def _enrol(lab: wglab.WgLab, name: str, user: str) -> str:
    out = lab.netmon("devices", "enrol", name, "--user", user, "--aup-accepted", "--no-qr").stdout
    return out[out.index("[Interface]") :]


def _identity(response: str) -> dict | None:
    match = re.search(r"^x-netmon-device: (.*)$", response, re.M | re.I)
    assert match, response
    return json.loads(match.group(1).strip())


def test_tunnel_to_the_proxy_names_the_device_and_revoke_cuts_it_off(lab: wglab.WgLab) -> None:
    _roster(lab)
    alice_conf = _enrol(lab, "lt-001", "alice")
    bob_conf = _enrol(lab, "lt-002", "bob")
    lab.start_server()
    lab.start_gateway()
    lab.start_client(1, alice_conf)
    lab.start_client(2, bob_conf)

    # web through the tunnel: redirected into the proxy, which names the device, the user and off-site
    page = lab.curl(1, f"http://{wglab.SERVER_V4}/news?id=1")
    assert page.returncode == 0, page.stderr
    assert f"server saw {wglab.GATEWAY_LAN_V4} ask for /news?id=1" in page.stdout
    identity = _identity(page.stdout)
    assert identity == {
        "user": "alice", "role": "pupil", "year_group": "9", "groups": ["year9", "form9b"], "mac": None,
        "device": "lt-001", "site": "", "off_site": True,
    }  # fmt: skip
    assert (_identity(lab.curl(2, f"http://{wglab.SERVER_V4}/").stdout) or {})["user"] == "bob"

    # DNS to any address goes to the school's resolver (which answers every name with the server)
    dns = lab.exec(lab.home_ns[0], sys.executable, "-c", DNS_QUERY, "8.8.8.8")
    assert dns.stdout.split() == ["beef", wglab.SERVER_V4]

    # QUIC and any other port are refused at once (reject: port or admin unreachable, never a silent drop)
    for kind, port in (("udp", 443), ("tcp", 22), ("udp", 5000)):
        out = lab.exec(lab.home_ns[0], sys.executable, "-c", REFUSED, kind, wglab.SERVER_V4, str(port)).stdout
        assert out.startswith("refused"), (kind, port, out)
        assert float(out.split()[1]) < 1.0

    # the gateway's last handshakes reach `netmon devices list`
    listed = lab.netmon("devices", "list").stdout
    assert re.search(r"^lt-001 .* 20\d\d-\d\d-\d\d \d\d:\d\d\s+active", listed, re.M), listed

    # revoke: applied to the running interface at once
    revoked = lab.netmon("devices", "revoke", "lt-001", "--reason", "lost")
    assert "applied to the running interface" in revoked.stderr
    peers = lab.exec(lab.gateway, "wg", "show", lab.gw_if, "peers").stdout
    alice_key = _public_key(lab, alice_conf)
    assert alice_key not in peers
    assert lab.curl(1, f"http://{wglab.SERVER_V4}/", timeout=3).returncode != 0
    # a fresh start of the revoked device never completes a handshake
    lab.start_client(1, alice_conf)
    time.sleep(6)  # wireguard-go retries a handshake every 5 s
    assert set(lab.latest_handshake(lab.home_ns[0], lab.client_if[0]).values()) == {0}
    assert lab.curl(1, f"http://{wglab.SERVER_V4}/", timeout=3).returncode != 0
    # the other device is unaffected
    assert (_identity(lab.curl(2, f"http://{wglab.SERVER_V4}/").stdout) or {})["device"] == "lt-002"
    # the gateway's file no longer lists it either (rewritten after the revoke)
    assert alice_key not in (lab.workdir / "wg-gateway.conf").read_text()


def test_tunnel_down_means_no_route(lab: wglab.WgLab) -> None:
    """A device whose tunnel is down cannot reach the web through the tunnel's route (fails closed here)."""
    _roster(lab)
    conf = _enrol(lab, "lt-003", "alice")
    lab.start_server()
    lab.start_gateway()
    lab.start_client(1, conf)
    assert lab.curl(1, f"http://{wglab.SERVER_V4}/").returncode == 0
    lab.exec(lab.home_ns[0], "ip", "link", "set", lab.client_if[0], "down")
    failed = lab.curl(1, f"http://{wglab.SERVER_V4}/", timeout=3)
    assert failed.returncode != 0


def _public_key(lab: wglab.WgLab, config: str) -> str:
    private = re.search(r"^PrivateKey = (\S+)$", config, re.M)
    assert private
    return lab.exec(lab.gateway, "wg", "pubkey", input=private.group(1)).stdout.strip()


def test_an_incident_through_the_tunnel_names_the_pupil_and_device_off_site(lab: wglab.WgLab) -> None:
    """The real `netmon run` on the gateway: no portal, no AUP prompt; the tunnel address is the pupil."""
    _roster(lab)
    alice_conf = _enrol(lab, "lt-001", "alice")
    lab.start_server()
    lab.start_gateway(proxy="netmon")
    lab.start_client(1, alice_conf)
    sent = lab.exec(
        lab.home_ns[0], "curl", "-sS", "--max-time", "10", "-d", "message=i want to kill myself tonight",
        f"http://{wglab.SERVER_V4}/chat", check=False, timeout=20,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    deadline, shown = time.monotonic() + 30, ""
    while time.monotonic() < deadline:
        listing = lab.netmon("incidents", check=False).stdout
        uid = re.search(r"^\S+ \S+\s+(\w{8})\s+\d\s+suicide", listing, re.M)
        if uid:
            shown = lab.netmon("incidents", "--show", uid.group(1)).stdout
            break
        time.sleep(0.5)
    assert shown, (
        lab.netmon("incidents", check=False).stdout + (lab.workdir / "mitmdump.log").read_text()[-2000:]
    )
    assert re.search(r"user\s+alice\b", shown), shown
    assert "lt-001 (off-site)" in shown, shown


MONITOR_ONLY_OFF_SITE = """groups:
  everyone:
    categories: {gambling: block}
    off_site: monitor_only
url_lists: [urls.csv]
ut1: off
"""


@pytest.fixture
def school_lab(tmp_path: Path) -> Iterator[wglab.WgLab]:
    """Home 1 is a pupil's home; home 2's link is the school's pupil Wi-Fi (the main ruleset's PUPIL_IF)."""
    reason = wglab.unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = wglab.WgLab(tmp_path, homes=2, pupil_home=2)
    try:
        lab.create()
        yield lab
    finally:
        lab.destroy()


def _incidents_shown(lab: wglab.WgLab, category: str, count: int) -> list[str]:
    deadline, found = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        listing = lab.netmon("incidents", check=False).stdout
        found = re.findall(rf"^\S+ \S+\s+(\w{{8}})\s+\d\s+{category}\b", listing, re.M)
        if len(found) >= count:
            break
        time.sleep(0.5)
    assert len(found) >= count, lab.netmon("incidents", check=False).stdout
    return [lab.netmon("incidents", "--show", uid).stdout for uid in found]


def test_monitor_only_off_site_blocked_on_site_and_a_school_laptop_keeps_its_tunnel_on_site(
    school_lab: wglab.WgLab,
) -> None:
    """The real `netmon run` behind the real shipped ruleset (which includes the tunnel's): a listed page is
    blocked on the pupils' Wi-Fi, fetched but recorded through the tunnel (off site: monitor only), and a
    school laptop on the pupils' Wi-Fi brings its tunnel up through it."""
    import shutil

    from netmon.config.paths import DEFAULT_POLICY_DIR

    lab = school_lab
    policy = lab.workdir / "policy"
    shutil.copytree(DEFAULT_POLICY_DIR, policy)
    (policy / "filtering.yaml").write_text(MONITOR_ONLY_OFF_SITE)
    (policy / "urls.csv").write_text(
        "type,value,category,severity,source\ndomain,casino.example,gambling,3,local\n"
    )
    _roster(lab)
    alice_conf = _enrol(lab, "lt-001", "alice")
    bob_conf = _enrol(lab, "lt-002", "bob")
    lab.start_server()
    # the lab's gateway cannot resolve the page's name, which the Host check would need (a 421)
    lab.start_gateway("netmon", "--policy", str(policy), "--no-portal", "--set", "netmon_host_check=false")
    casino = ("-H", "Host: www.casino.example", f"http://{wglab.SERVER_V4}/slots")

    # on site (the pupils' Wi-Fi, no tunnel): the shipped ruleset sends it to the proxy, which blocks it
    on_site = lab.exec(lab.home_ns[1], "curl", "-sS", "-i", "--max-time", "10", *casino, check=False)
    assert on_site.stdout.startswith("HTTP/1.1 403"), on_site.stdout[:300] + on_site.stderr
    assert "www.casino.example" in on_site.stdout and "gambling" in on_site.stdout
    # WireGuard to anywhere but the gateway is still refused on the pupils' Wi-Fi
    out = lab.exec(lab.home_ns[1], sys.executable, "-c", REFUSED, "udp", wglab.SERVER_V4, "51820").stdout
    assert out.startswith("refused"), out

    # off site, through the tunnel: the same page is fetched (monitor only) and still an incident
    lab.start_client(1, alice_conf)
    off_site = lab.exec(lab.home_ns[0], "curl", "-sS", "-i", "--max-time", "10", *casino, check=False)
    ok = ("HTTP/1.0 200", "HTTP/1.1 200")
    assert off_site.stdout.startswith(ok), off_site.stdout[:300] + off_site.stderr
    assert f"server saw {wglab.GATEWAY_LAN_V4} ask for /slots" in off_site.stdout

    # a school laptop on the pupils' Wi-Fi keeps its tunnel up (the WireGuard port of the gateway itself)
    lab.start_client(2, bob_conf)
    laptop = lab.exec(lab.home_ns[1], "curl", "-sS", "-i", "--max-time", "10", *casino, check=False)
    assert laptop.stdout.startswith(ok), laptop.stdout[:300] + laptop.stderr

    shown = _incidents_shown(lab, "gambling", 3)
    blocked = [s for s in shown if re.search(r"blocked=True", s)]
    monitored = [s for s in shown if re.search(r"blocked=False", s)]
    assert len(blocked) == 1 and "(off-site)" not in blocked[0], shown
    assert sorted(re.search(r"lt-00\d \(off-site\)", s).group(0) for s in monitored) == [  # type: ignore[union-attr]
        "lt-001 (off-site)",
        "lt-002 (off-site)",
    ], shown
    assert all("not_blocked=off site" in s for s in monitored), monitored

    # a tunnel address sent from the pupils' Wi-Fi is forged: refused, and counted
    lab.stop_client(2)
    lab.exec(lab.home_ns[1], "ip", "addr", "add", "10.99.0.77/32", "dev", "wan0")
    forged = lab.exec(
        lab.home_ns[1], "curl", "-sS", "--max-time", "3", "--interface", "10.99.0.77",
        f"http://{wglab.SERVER_V4}/", check=False,
    )  # fmt: skip
    assert forged.returncode != 0
    counted = lab.exec(lab.gateway, "nft", "list", "chain", "inet", "netmon_wg", "spoofed").stdout
    assert int(re.search(r"packets (\d+)", counted).group(1)) > 0, counted  # type: ignore[union-attr]
