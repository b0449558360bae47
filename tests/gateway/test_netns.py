"""The gateway box in network namespaces: pupil device -> gateway (deploy/ rules, netmon transparent) ->
internet. Everything the device does goes through real curl / sockets; nothing is mocked."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent
from tests.gateway import netns
from tests.gateway.conftest import PROXY_PORT, Gateway
from tests.gateway.internet import blob

pytestmark = [pytest.mark.netns, pytest.mark.e2e]


def _json(result: object) -> dict:
    out = getattr(result, "stdout", "")
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")
    return json.loads(out)


def test_rules_from_deploy_are_loaded_for_the_pupil_interface(gateway: Gateway) -> None:
    lab = gateway.lab
    listed = json.loads(lab.exec(lab.gateway, "nft", "-j", "list", "table", "inet", "netmon").stdout)
    text = lab.exec(lab.gateway, "nft", "list", "table", "inet", "netmon").stdout
    assert f'iifname != "{netns.PUPIL_IF}"' in text
    assert "map @proxy_workers" in text and f"0-15 : {PROXY_PORT}" in text
    assert "udp dport 443" in text and "reject" in text
    chains = {item["chain"]["name"] for item in listed["nftables"] if "chain" in item}
    assert {"prerouting", "forward", "input"} <= chains
    # reloading is atomic and idempotent: still exactly one netmon table
    lab.configure_gateway(PROXY_PORT)
    tables = lab.exec(lab.gateway, "nft", "list", "tables").stdout.split("\n")
    assert [t for t in tables if "netmon" in t] == ["table inet netmon"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_traffic_is_intercepted_server_sees_gateway_and_bytes_arrive_unchanged(
    gateway: Gateway, scheme: str
) -> None:
    payload = os.urandom(300_000)
    upload = gateway.workdir / f"upload-{scheme}.bin"
    upload.write_bytes(payload)
    # the device trusts only the school's CA: an HTTPS success proves the proxy terminated TLS
    seen = _json(
        gateway.curl(
            f"{scheme}://news.example/echo",
            "--data-binary",
            f"@{upload}",
            "-H",
            "Content-Type: application/octet-stream",
        )
    )
    assert seen["peer"] == netns.GATEWAY_UPLINK_V4  # the server sees the gateway, not the device
    assert seen["length"] == len(payload)
    assert seen["sha256"] == hashlib.sha256(payload).hexdigest()
    assert seen["host"] == "news.example"

    download = gateway.workdir / f"download-{scheme}.bin"
    result = gateway.curl(f"{scheme}://news.example/blob?seed=7&size=500000", "-o", str(download))
    assert result.returncode == 0, result.stderr
    assert download.read_bytes() == blob(7, 500_000)


def test_ipv6_is_intercepted_too_never_a_silent_bypass(gateway: Gateway) -> None:
    seen = _json(gateway.curl(f"https://[{netns.SERVER_V6}]/echo", "-g"))
    assert seen["peer"] == netns.GATEWAY_UPLINK_V6
    direct = gateway.device(
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        str(gateway.internet.ca),
        "-g",
        f"https://[{netns.SERVER_V6}]/echo",
    )
    assert direct.returncode != 0  # the real certificate never reaches the device: it went via the proxy


UDP_PROBE = r"""
import json, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
out = {}
for port in (443,):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(3)
    sock.connect((sys.argv[1], port))
    start = time.perf_counter()
    sock.send(b"quic-initial")
    try:
        sock.recv(100)
        out[port] = ["answered", time.perf_counter() - start]
    except ConnectionRefusedError:
        out[port] = ["refused", time.perf_counter() - start]
    except TimeoutError:
        out[port] = ["timeout", time.perf_counter() - start]
print(json.dumps(out))
"""


@pytest.mark.parametrize("server", [netns.SERVER_V4, netns.SERVER_V6])
def test_quic_is_refused_at_once(gateway: Gateway, server: str) -> None:
    result = gateway.device(sys.executable, "-c", UDP_PROBE, server)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    verdict, seconds = outcome["443"]
    assert verdict == "refused"
    assert seconds < 0.1  # a REJECT: browsers fall back to TCP at once (a DROP would make them wait ~2 s)
    # other UDP is refused too (default deny): see test_netns_firewall.py


def test_dns_over_tls_is_refused(gateway: Gateway) -> None:
    result = gateway.device("curl", "-sS", "--max-time", "5", f"telnet://{netns.SERVER_V4}:853")
    assert result.returncode == 7  # connection refused at once (TCP reset), not a timeout (28)


def test_device_without_the_ca_fails_once_then_passes_through_and_the_host_is_recorded(
    gateway: Gateway,
) -> None:
    first = gateway.curl("https://pinned.example/echo", trust="internet")
    assert first.returncode == 60, first.stderr  # certificate problem: the school's CA is not trusted
    second = gateway.curl("https://pinned.example/echo", trust="internet")
    seen = _json(second)
    assert seen["sni"] == "pinned.example"  # the device's own TLS reached the server untouched
    assert seen["peer"] == netns.GATEWAY_UPLINK_V4
    # the hostname is recorded (audit event), and the counters show the refusal and the passthrough
    expected = ("10.77.0.10", "pinned.example", "refused-before")
    assert expected in _passthrough_events(gateway, expected)
    counters = gateway.status(want="tls.passthrough.refused-before")["counters"]
    assert counters["tls.refused"] >= 1
    assert counters["tls.passthrough"] >= 1
    # another site from the same device is still intercepted
    assert gateway.curl("https://quiet.example/echo", trust="internet").returncode == 60


def test_no_decrypt_sites_are_never_intercepted(gateway: Gateway) -> None:
    seen = _json(gateway.curl("https://www.bank.example/echo", trust="internet"))
    assert seen["sni"] == "www.bank.example"
    assert seen["peer"] == netns.GATEWAY_UPLINK_V4
    expected = ("10.77.0.10", "www.bank.example", "no-decrypt")
    assert expected in _passthrough_events(gateway, expected)


def test_forged_no_decrypt_name_to_another_server_is_decrypted_and_refused(gateway: Gateway) -> None:
    """The school's resolver gives www.bank.example as SERVER_V4; a device that names the bank in its
    handshake while connecting to another server (curl --resolve) gets no passthrough: it is decrypted,
    and its request, naming the bank, is refused as misdirected (the next test shows a forged name
    that matches its own address is scanned)."""
    forged = gateway.device(
        "curl",
        "-sS",
        "--max-time",
        "15",
        "--cacert",
        str(gateway.school_ca),  # succeeds only if the proxy presented the school's certificate
        "--resolve",
        f"www.bank.example:443:{netns.OTHER_V4}",
        "https://www.bank.example/phrase.html",
    )
    assert forged.returncode == 0, forged.stderr  # decrypted: the school's certificate was accepted
    # and, decrypted, its Host (the bank) does not match where it went: refused before any upstream
    assert "Wrong address" in forged.stdout
    assert not [r for r in gateway.internet.requests() if r["path"] == "/phrase.html"]
    log = gateway.log()
    assert f"no-decrypt name www.bank.example sent to {netns.OTHER_V4}" in log
    assert (
        f"Host www.bank.example from {netns.DEVICE_V4} does not match the destination {netns.OTHER_V4}" in log
    )
    assert gateway.status(want="tls.no-decrypt.mismatch")["counters"]["tls.no-decrypt.mismatch"] >= 1
    # the genuine address still passes through untouched, and the record names the address
    seen = _json(gateway.curl("https://www.bank.example/echo", trust="internet"))
    assert seen["sni"] == "www.bank.example"
    engine = make_engine(gateway.db_url)
    try:
        with Session(engine) as session:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "tls.passthrough")).all()
            addresses = {(r.subject, r.detail.get("address")) for r in rows}
    finally:
        engine.dispose()
    assert ("www.bank.example", netns.SERVER_V4) in addresses


def test_decrypted_traffic_is_scanned_under_a_name_that_matches_its_address(gateway: Gateway) -> None:
    result = gateway.curl("https://news.example/phrase.html")
    assert result.returncode == 0 and "kill myself" in result.stdout
    rows = gateway.incidents(lambda rows: any(r["url"] == "https://news.example/phrase.html" for r in rows))
    assert any(r["url"] == "https://news.example/phrase.html" for r in rows)


def test_status_command_shows_the_counters(gateway: Gateway) -> None:
    gateway.curl("https://news.example/echo")
    gateway.status(want="tls.decrypted")
    result = gateway.netmon("status", "--state-dir", str(gateway.state_dir), "--db", gateway.db_url)
    assert result.returncode == 0, result.stderr
    counts = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.strip()}
    for label in ("decrypted", "passthrough", "refused"):
        assert int(counts[label]) >= 1, result.stdout
    # the sites passed through, from the store: the pinned app's host and the no-decrypt bank
    assert re.search(r"pinned\.example\s+refused-before\s+1 device", result.stdout), result.stdout
    assert re.search(r"www\.bank\.example\s+no-decrypt\s+1 device", result.stdout), result.stdout


def _passthrough_events(
    gateway: Gateway, expected: tuple[str, str, str], timeout: float = 15
) -> set[tuple[str, str, str]]:
    """The recorded passthrough visits (client, host, reason), waiting until ``expected`` is among them."""
    engine = make_engine(gateway.db_url)
    deadline = time.monotonic() + timeout
    found: set[tuple[str, str, str]] = set()
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "tls.passthrough")).all()
                found = {(r.detail.get("client_ip"), r.subject, r.detail.get("reason")) for r in rows}
            if expected in found:
                return found
            time.sleep(0.3)
    finally:
        engine.dispose()
    return found


def test_explicit_proxy_alternative_on_3128_is_monitored_too(gateway: Gateway) -> None:
    """Devices set up by PAC/WPAD/MDM use the proxy directly (regular@3128 in the shipped config)."""
    proxy = f"http://{netns.GATEWAY_PUPIL_V4}:3128"
    # by address: the gateway namespace has no DNS to resolve the test's names in a CONNECT
    seen = _json(gateway.curl(f"https://{netns.SERVER_V4}/echo?explicit", "--proxy", proxy))
    assert seen["peer"] == netns.GATEWAY_UPLINK_V4
    assert seen["path"] == "/echo?explicit"
    # the device trusts only the school's CA: success means the explicit proxy decrypted it
    direct = gateway.device(
        "curl",
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        str(gateway.internet.ca),
        "--proxy",
        proxy,
        f"https://{netns.SERVER_V4}/echo",
    )
    assert direct.returncode == 60
