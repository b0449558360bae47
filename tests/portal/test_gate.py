"""IdentityTagger and PortalGate through mitmproxy's taddons/tflow, over a real store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from netmon_proxy.identity import IdentityTagger, PortalGate
from netmon_proxy.settings import Settings
from sqlalchemy.orm import Session

from netmon.identity.passthrough import ResolvedNames
from netmon.identity.probes import APPLE_SUCCESS, PROBES
from netmon.identity.refresher import SessionRefresher
from netmon.identity.sessions import (
    SETTING_AUP_VERSION,
    ensure_link_key,
    set_setting,
    start_session,
)
from netmon.identity.signing import link_signature_ok, sign_client_ip, verified_client_ip
from netmon.identity.users import Account
from netmon.ops import counters
from netmon.store.db import make_engine

PORTAL = "http://10.20.0.1:8090/"
ALICE = Account("alice", "Alice Smith", "pupil", "Y9", ("9A", "art"), "local")


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        set_setting(session, SETTING_AUP_VERSION, "v1")
        ensure_link_key(session)
    yield engine
    engine.dispose()


@pytest.fixture
def chain(store: Any) -> Iterator[tuple[Any, IdentityTagger, PortalGate, SessionRefresher]]:
    refresher = SessionRefresher(store, arp_path=None)
    refresher.refresh()
    tagger = IdentityTagger(refresher)
    gate = PortalGate(tagger)
    counters.reset()
    with taddons.context(Settings(), tagger, gate) as tctx:
        tctx.configure(
            gate,
            netmon_portal=True,
            netmon_portal_url=PORTAL,
            netmon_portal_allow=["help.school.test", "*.trusted.test"],
        )
        yield tctx, tagger, gate, refresher


def sign_in(engine: Any, refresher: SessionRefresher, ip: str = "127.0.0.1") -> None:
    with Session(engine) as session, session.begin():
        start_session(
            session,
            ALICE,
            ip=ip,
            mac=None,
            user_agent="t",
            aup_version="v1",
            language="en",
            idle=timedelta(hours=1),
        )
    refresher.refresh()


def request_flow(url: str, method: str = "GET", ip: str = "127.0.0.1") -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.client_conn.peername = (ip, 50000)
    flow.request = http.Request.make(method, url)
    flow.request.headers["Host"] = flow.request.authority or flow.request.host
    flow.client_conn.sni = flow.request.host if flow.request.scheme == "https" else None
    # as through the explicit proxy: the proxy connects where the URL says
    flow.server_conn.address = (flow.request.host, flow.request.port)
    return flow


async def run(
    tagger: IdentityTagger, gate: PortalGate, flow: http.HTTPFlow, hook: str = "requestheaders"
) -> None:
    """What mitmproxy does: call each hook, and await what it returns (the gate returns an awaitable
    only when it must look at the sessions)."""
    getattr(tagger, hook)(flow)
    pending = getattr(gate, hook)(flow)
    if pending is not None:
        await pending


async def test_plain_http_is_redirected_with_a_signed_continue_link(chain: Any, store: Any) -> None:
    _, tagger, gate, _ = chain
    flow = request_flow("http://pages.test/homework?id=7")
    await run(tagger, gate, flow)
    assert flow.response is not None and flow.response.status_code == 302
    location = flow.response.headers["Location"]
    assert location.startswith(PORTAL + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["next"] == ["http://pages.test/homework?id=7"]
    # signed for this device only (request_flow's default address)
    assert link_signature_ok(tagger.snapshot.link_key, query["next"][0], query["sig"][0], "127.0.0.1")
    assert not link_signature_ok(tagger.snapshot.link_key, query["next"][0], query["sig"][0], "10.0.0.9")
    assert "netmon.user" not in flow.metadata
    assert counters.snapshot()["portal.redirected"] == 1


async def test_https_is_refused_at_once_for_unsigned_devices(chain: Any) -> None:
    _, tagger, gate, _ = chain
    connect = request_flow("http://pages.test:443/")
    connect.request.method = "CONNECT"
    connect.request.host, connect.request.port = "pages.test", 443
    await run(tagger, gate, connect, "http_connect")
    assert connect.response is not None and connect.response.status_code == 511
    # transparent mode: no CONNECT, the TLS request itself is answered
    flow = request_flow("https://pages.test/secret")
    await run(tagger, gate, flow)
    assert flow.response is not None and flow.response.status_code == 511
    assert PORTAL in flow.response.get_text()
    assert counters.snapshot()["portal.refused"] == 2
    page = flow.response.get_text()
    assert "Sign in to the Wi-Fi" in page and "Mewngofnodwch ar dudalen Wi-Fi" in page, "English and Welsh"
    assert 'name="viewport"' in page, "readable on a phone"


async def test_allow_list_and_portal_pass_without_sign_in(chain: Any) -> None:
    _, tagger, gate, _ = chain
    for url in (
        "http://10.20.0.1:8090/ca",
        "http://help.school.test/",
        "https://www.trusted.test/x",
        "http://mitm.it/cert/pem",
    ):
        flow = request_flow(url)
        await run(tagger, gate, flow)
        assert flow.response is None, url
    other_port = request_flow("http://10.20.0.1:8080/")
    await run(tagger, gate, other_port)
    assert other_port.response is not None and other_port.response.status_code == 302
    connect = request_flow("http://help.school.test:443/")
    connect.request.method = "CONNECT"
    connect.request.host, connect.request.port = "help.school.test", 443
    await run(tagger, gate, connect, "http_connect")
    assert connect.response is None


async def test_signed_in_device_is_tagged_and_passes(chain: Any, store: Any) -> None:
    _, tagger, gate, refresher = chain
    sign_in(store, refresher)
    flow = request_flow("https://pages.test/")
    await run(tagger, gate, flow)
    assert flow.response is None
    assert flow.metadata["netmon.user"] == {
        "user": "alice",
        "role": "pupil",
        "year_group": "Y9",
        "groups": ["9A", "art"],
        "mac": None,
    }
    other = request_flow("http://pages.test/", ip="10.9.9.9")  # another address is still gated
    await run(tagger, gate, other)
    assert other.response is not None and other.response.status_code == 302


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p.os}-{p.host}{p.path}")
async def test_os_probes_answer_captive_then_online(chain: Any, store: Any, probe: Any) -> None:
    _, tagger, gate, refresher = chain
    path = "/hotspot-detect.html" if probe.path == "*" else probe.path
    before = request_flow(f"http://{probe.host}{path}")
    await run(tagger, gate, before)
    assert before.response is not None
    assert before.response.status_code == 302 and before.response.headers["Location"] == PORTAL
    assert before.response.content != probe.body
    sign_in(store, refresher)
    after = request_flow(f"http://{probe.host}{path}")
    await run(tagger, gate, after)
    assert after.response is not None
    assert (after.response.status_code, after.response.content) == (probe.status, probe.body)


async def test_apple_and_android_answers_are_exact(chain: Any, store: Any) -> None:
    _, tagger, gate, refresher = chain
    sign_in(store, refresher)
    apple = request_flow("http://captive.apple.com/hotspot-detect.html")
    await run(tagger, gate, apple)
    assert apple.response is not None and apple.response.content == APPLE_SUCCESS
    android = request_flow("http://connectivitycheck.gstatic.com/generate_204")
    await run(tagger, gate, android)
    assert android.response is not None and android.response.status_code == 204


async def test_gate_off_lets_everything_through(chain: Any) -> None:
    tctx, tagger, gate, _ = chain
    tctx.configure(gate, netmon_portal=False)
    flow = request_flow("http://pages.test/")
    assert gate.requestheaders(flow) is None  # nothing to wait for: no coroutine per request
    await run(tagger, gate, flow)
    assert flow.response is None


async def test_gate_fails_closed(chain: Any, store: Any) -> None:
    _, tagger, gate, refresher = chain
    sign_in(store, refresher)

    def broken(ip: str) -> None:
        raise RuntimeError("snapshot exploded")

    tagger.session_for = broken  # type: ignore[method-assign]
    flow = request_flow("http://pages.test/")
    pending = gate.requestheaders(flow)
    assert pending is not None
    await pending
    assert flow.response is not None and flow.response.status_code == 511
    assert counters.snapshot()["portal.failed-closed"] == 1


async def test_no_snapshot_yet_means_not_signed_in(store: Any) -> None:
    tagger = IdentityTagger(SessionRefresher(store, arp_path=None))  # never refreshed
    gate = PortalGate(tagger)
    with taddons.context(Settings(), tagger, gate) as tctx:
        tctx.configure(gate, netmon_portal=True, netmon_portal_url=PORTAL)
        flow = request_flow("http://pages.test/")
        await run(tagger, gate, flow)
        assert flow.response is not None and flow.response.status_code == 302


async def test_trust_check_is_answered_by_the_proxy(chain: Any) -> None:
    _, tagger, gate, _ = chain
    connect = request_flow("http://mitm.it:443/")
    connect.request.method = "CONNECT"
    connect.request.host, connect.request.port = "mitm.it", 443
    await run(tagger, gate, connect, "http_connect")
    assert connect.response is not None and connect.response.status_code == 200
    flow = request_flow("https://mitm.it/netmon-trust-check?t=1")
    await run(tagger, gate, flow)
    assert flow.response is not None and flow.response.status_code == 204
    assert flow.response.headers["X-Netmon-Trust"] == "yes"
    assert flow.response.headers["Access-Control-Expose-Headers"] == "X-Netmon-Trust"


async def test_bad_options_are_refused(chain: Any) -> None:
    from mitmproxy.exceptions import OptionsError

    tctx, _, gate, _ = chain
    with pytest.raises(OptionsError, match="netmon_portal_url"):
        tctx.configure(gate, netmon_portal_url="portal.school")
    with pytest.raises(OptionsError, match="netmon_portal_allow"):
        tctx.configure(gate, netmon_portal_allow=["http://x/"])


async def test_a_device_that_just_signed_in_is_not_sent_back(store: Any) -> None:
    """The periodic refresh is slow (60 s here): a signed-out-looking request triggers one fresh look."""
    refresher = SessionRefresher(store, interval=60, arp_path=None)
    tagger = IdentityTagger(refresher)
    gate = PortalGate(tagger)
    with taddons.context(Settings(), tagger, gate) as tctx:
        tctx.configure(gate, netmon_portal=True, netmon_portal_url=PORTAL)
        refresher.start()
        tagger.bind_loop(asyncio.get_running_loop())
        try:
            with Session(store) as session, session.begin():
                start_session(
                    session, ALICE, ip="127.0.0.1", mac=None, user_agent="t", aup_version="v1", language="en"
                )
            flow = request_flow("http://pages.test/homework")
            started = time.monotonic()
            await run(tagger, gate, flow)
            assert flow.response is None
            assert flow.metadata["netmon.user"]["user"] == "alice"
            assert time.monotonic() - started < 1.5
            # a device that really is signed out waits at most one coalesced refresh
            other = request_flow("http://pages.test/", ip="10.1.1.1")
            started = time.monotonic()
            await run(tagger, gate, other)
            assert other.response is not None and other.response.status_code == 302
            assert time.monotonic() - started < 1.5
        finally:
            refresher.stop()


async def test_unsigned_device_still_carries_its_mac(store: Any, tmp_path: Any) -> None:
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.20.0.5        0x1         0x2         aa:bb:cc:00:00:05     *        wlan0\n"
    )
    refresher = SessionRefresher(store, arp_path=arp)
    refresher.refresh()
    tagger = IdentityTagger(refresher)
    flow = request_flow("http://pages.test/", ip="10.20.0.5")
    tagger.requestheaders(flow)
    assert flow.metadata["netmon.user"] == {
        "user": None,
        "role": None,
        "year_group": None,
        "groups": [],
        "mac": "aa:bb:cc:00:00:05",
    }
    with Session(store) as session, session.begin():
        start_session(
            session,
            ALICE,
            ip="10.20.0.5",
            mac="aa:bb:cc:00:00:05",
            user_agent="t",
            aup_version="v1",
            language="en",
        )
    refresher.refresh()
    flow = request_flow("http://pages.test/", ip="10.20.0.5")
    tagger.requestheaders(flow)
    assert flow.metadata["netmon.user"]["user"] == "alice"
    assert flow.metadata["netmon.user"]["mac"] == "aa:bb:cc:00:00:05"


async def test_requests_to_the_portal_name_the_device(chain: Any) -> None:
    tctx, tagger, gate, _ = chain
    flow = request_flow("http://10.20.0.1:8090/signin", method="POST", ip="10.20.0.77")
    flow.request.headers["X-Netmon-Client-IP"] = "10.20.0.99"  # whatever the device claims is replaced
    await run(tagger, gate, flow)
    assert flow.response is None
    key = tagger.snapshot.link_key
    assert verified_client_ip(key, flow.request.headers["X-Netmon-Client-IP"]) == "10.20.0.77"
    other = request_flow("http://pages.test/", ip="10.20.0.77")
    other.request.headers["X-Netmon-Client-IP"] = sign_client_ip(key or "", "10.20.0.5")  # replayed
    tctx.configure(gate, netmon_portal=False)
    await run(tagger, gate, other)
    assert "X-Netmon-Client-IP" not in other.request.headers  # removed: only the portal is told


async def test_a_host_header_naming_the_portal_reaches_nothing_else(chain: Any) -> None:
    """Through the explicit proxy: the real destination decides, and a Host that differs is refused."""
    tctx, tagger, gate, _ = chain
    sneaky = request_flow("http://10.20.0.1:5000/admin", ip="10.20.0.77")
    sneaky.request.headers["Host"] = "10.20.0.1:8090"
    await run(tagger, gate, sneaky)
    assert sneaky.response is not None and sneaky.response.status_code in (302, 421, 511)
    assert "X-Netmon-Client-IP" not in sneaky.request.headers
    # transparent mode: the device connected to 192.0.2.99 but names an allow-listed host
    fronted = request_flow("http://help.school.test/", ip="10.20.0.77")
    fronted.server_conn.address = ("192.0.2.99", 80)
    gate.resolved = ResolvedNames(_resolver({"help.school.test": ["192.0.2.10"]}))
    await run(tagger, gate, fronted)
    assert fronted.response is not None and fronted.response.status_code == 421
    genuine = request_flow("http://help.school.test/", ip="10.20.0.77")
    genuine.server_conn.address = ("192.0.2.10", 80)
    await run(tagger, gate, genuine)
    assert genuine.response is None  # allow-listed, and really there
    # with the portal off the Host check still holds (URL lists decide on the checked name)
    tctx.configure(gate, netmon_portal=False)
    listed = request_flow("http://innocent.test/", ip="10.20.0.77")
    listed.server_conn.address = ("192.0.2.66", 80)
    await run(tagger, gate, listed)
    assert listed.response is not None and listed.response.status_code == 421
    assert counters.snapshot()["portal.host-mismatch"] >= 2


async def test_inside_a_tunnel_the_connect_target_is_the_destination(chain: Any) -> None:
    """Explicit proxy, HTTPS: the proxy resolves the CONNECT name itself, so the tunnel's requests must
    name that host, whatever later happens to the server connection (e.g. an upstream re-route)."""
    tctx, tagger, gate, _ = chain
    tctx.configure(gate, netmon_portal=False)
    connect = request_flow("https://bank.test/", method="CONNECT", ip="10.20.0.77")
    connect.request.host, connect.request.port = "bank.test", 443
    gate.http_connect(connect)
    for host, refused in (("bank.test", False), ("evil.test", True)):
        inner = request_flow(f"https://{host}/", ip="10.20.0.77")
        inner.client_conn = connect.client_conn
        inner.server_conn.address = ("127.0.0.1", 9999)  # re-routed after the CONNECT
        await run(tagger, gate, inner)
        status = inner.response.status_code if inner.response is not None else None
        assert (status == 421) is refused, f"Host {host}: {status}"
    gate.client_disconnected(connect.client_conn)
    from netmon_proxy.context import _TUNNELS

    assert connect.client_conn.id not in _TUNNELS


def _resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(name: str) -> list[str]:
        return table.get(name, [])

    return resolve


async def test_proxy_started_before_the_portal_still_signs_continue_links(store_url: str) -> None:
    from netmon.identity.sessions import SETTING_LINK_KEY, get_setting

    engine = make_engine(store_url)  # a fresh store: the portal has never run
    refresher = SessionRefresher(engine, arp_path=None)
    key = refresher.refresh().link_key
    assert key
    with Session(engine) as session:
        assert get_setting(session, SETTING_LINK_KEY) == key  # the portal will use the same key
    engine.dispose()
