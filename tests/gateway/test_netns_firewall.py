"""Default deny (deploy/nftables/netmon.nft) from a pupil's device, IPv4 and IPv6, in network namespaces.

Stand-ins listen in the gateway on the proxy's port (8080), the explicit proxy (3128), the portal (8090)
and an unrelated gateway service (9999), so that "answered" and "refused" tell the firewall's decision
apart from an absent service. The internet namespace answers on every port the tests try.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netmon.identity.sessions import end_sessions, start_session
from netmon.identity.users import Account
from netmon.store.db import make_engine, upgrade
from tests.gateway import netns
from tests.gateway.conftest import Internet
from tests.gateway.netns import Lab

pytestmark = [pytest.mark.netns]

GATEWAY_SERVICES = (8080, 3128, 8090, 9999)
SERVERS = [(netns.SERVER_V4, netns.GATEWAY_PUPIL_V4), (netns.SERVER_V6, netns.GATEWAY_PUPIL_V6)]


@pytest.fixture(scope="module")
def services(lab: Lab, internet: Internet) -> Iterator[Lab]:
    code = (
        "import threading, sys\n"
        "from tests.gateway.internet import tcp_echo\n"
        "for port in map(int, sys.argv[1:]):\n"
        "    threading.Thread(target=tcp_echo, args=(port,), daemon=True).start()\n"
        "threading.Event().wait()\n"
    )
    log = lab.workdir / "gateway-services.log"
    proc = lab.spawn(lab.gateway, sys.executable, "-c", code, *map(str, GATEWAY_SERVICES), log=log)
    for port in GATEWAY_SERVICES:
        lab.wait_listening(lab.gateway, port, proc, log=log)
    yield lab


def probe(lab: Lab, *targets: str) -> dict[str, dict]:
    result = lab.exec(lab.device, sys.executable, "-m", "tests.gateway.probe", *targets, timeout=90)
    return json.loads(result.stdout)


def verdicts(lab: Lab, *targets: str) -> dict[str, str]:
    return {target: out["verdict"] for target, out in probe(lab, *targets).items()}


def _t(kind: str, host: str, port: int | str) -> str:
    return f"{kind}:{host}:{port}"


@pytest.mark.parametrize(("server", "gateway"), SERVERS)
def test_unsigned_device_reaches_only_dns_web_via_proxy_portal_and_explicit_proxy(
    services: Lab, server: str, gateway: str
) -> None:
    allowed = [
        _t("tcp", server, 80),  # redirected into the proxy (the stand-in on 8080 answers)
        _t("tcp", server, 443),
        _t("tcp", gateway, 8090),  # the portal
        _t("tcp", gateway, 3128),  # the explicit proxy
        _t("dns", gateway, "news.example"),  # the school's resolver
    ]
    refused = [
        _t("tcp", server, 8443),  # any other port on the internet
        _t("tcp", server, 5000),  # a school-listed port: only once signed in
        _t("udp", server, 5000),
        _t("udp", server, 51820),  # WireGuard
        _t("udp", server, 1194),  # OpenVPN
        _t("tcp", server, 1194),
        _t("udp", server, 500),  # IPsec
        _t("udp", server, 4500),
        _t("udp", server, 443),  # QUIC
        _t("tcp", server, 853),  # DNS-over-TLS
        _t("udp", server, 853),  # DNS-over-QUIC
        _t("tcp", server, 53),  # DNS to another resolver
        _t("udp", server, 53),
        _t("tcp", gateway, 9999),  # another service on the gateway itself
        _t("udp", gateway, 443),
    ]
    out = probe(services, *allowed, *refused)
    got = {target: result["verdict"] for target, result in out.items()}
    for target in allowed[:2]:
        assert got[target] == "answered" and out[target]["data"].startswith("hello:8080"), out[target]
    assert out[allowed[2]]["data"].startswith("hello:8090")
    assert out[allowed[3]]["data"].startswith("hello:3128")
    assert got[allowed[4]] == "NOERROR" and out[allowed[4]]["addresses"] == [netns.SERVER_V4]
    assert {t: got[t] for t in refused} == {t: "refused" for t in refused}
    # REJECT, never DROP: every refusal is immediate, so apps and browsers fall back at once
    slow = {t: out[t]["s"] for t in refused if out[t]["s"] >= 0.5}
    assert not slow, slow


def test_firefox_canary_and_private_relay_names_are_nxdomain(services: Lab) -> None:
    gateway = netns.GATEWAY_PUPIL_V4
    got = verdicts(
        services,
        _t("dns", gateway, "use-application-dns.net"),
        _t("dns6", netns.GATEWAY_PUPIL_V6, "use-application-dns.net"),
        _t("dns", gateway, "mask.icloud.com"),
    )
    assert set(got.values()) == {"NXDOMAIN"}, got


@pytest.mark.parametrize("doh", [netns.OTHER_V4, netns.OTHER_V6])
def test_known_doh_resolver_is_refused_not_proxied(services: Lab, doh: str) -> None:
    before = verdicts(services, _t("tcp", doh, 443))
    assert set(before.values()) == {"answered"}  # any other address: web goes to the proxy
    family = "doh_v6" if ":" in doh else "doh_v4"
    services.exec(services.gateway, "nft", "add", "element", "inet", "netmon", family, f"{{ {doh} }}")
    try:
        assert set(verdicts(services, _t("tcp", doh, 443), _t("udp", doh, 443)).values()) == {"refused"}
    finally:
        services.exec(services.gateway, "nft", "delete", "element", "inet", "netmon", family, f"{{ {doh} }}")


def _sync(lab: Lab, db_url: str) -> None:
    lab.exec(lab.gateway, sys.executable, "-m", "netmon.identity.firewall", "--db", db_url, "--once")


def test_signed_in_device_reaches_only_the_listed_ports(services: Lab, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'netmon.db'}"
    upgrade(db_url)
    engine = make_engine(db_url)
    pupil = Account("jsmith", "Jo Smith", "pupil", "9", ("year9",), "local")
    from sqlalchemy.orm import Session

    with Session(engine) as db, db.begin():
        for ip in (netns.DEVICE_V4, netns.DEVICE_V6):
            start_session(db, pupil, ip=ip, mac=None, user_agent="test", aup_version="1", language="en")
    _sync(services, db_url)
    listed = services.exec(services.gateway, "nft", "list", "set", "inet", "netmon", "signed_v4").stdout
    assert netns.DEVICE_V4 in listed
    targets = []
    for server, _gateway in SERVERS:
        targets += [_t("tcp", server, 5000), _t("udp", server, 5000)]
    still_refused = []
    for server, _gateway in SERVERS:
        still_refused += [
            _t("tcp", server, 8443),
            _t("udp", server, 51820),
            _t("udp", server, 443),
            _t("tcp", server, 853),
            _t("udp", server, 53),
        ]
    got = verdicts(services, *targets, *still_refused)
    assert {t: got[t] for t in targets} == {t: "answered" for t in targets}
    assert {t: got[t] for t in still_refused} == {t: "refused" for t in still_refused}
    # signed out in the store: the next sync takes the ports away again
    with Session(engine) as db, db.begin():
        end_sessions(db, username="jsmith", reason="signed-out")
    _sync(services, db_url)
    time.sleep(0.1)
    assert set(verdicts(services, *targets).values()) == {"refused"}
    engine.dispose()
