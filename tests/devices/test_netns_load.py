"""Load: 200 enrolled peers on the gateway; gateway-config generation, loading, and a few handshakes.

Prints the figures (run with -s to see them); docs/offsite.md quotes a run. Bounds are loose: they catch
a regression by an order of magnitude, not noise.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.devices import wglab

pytestmark = [pytest.mark.netns, pytest.mark.e2e]
PEERS = 200
BROWSING = 20
PAGES = 20  # pages each browsing device fetches, one after another


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[wglab.WgLab]:
    reason = wglab.unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = wglab.WgLab(tmp_path, homes=BROWSING)
    try:
        lab.create()
        yield lab
    finally:
        lab.destroy()


def test_200_peers(lab: wglab.WgLab) -> None:
    from netmon.identity import enrolment
    from netmon.identity.wireguard import TunnelSettings, public_key_of
    from netmon.store.db import open_store
    from netmon.store.identity import UserAccount

    figures: dict[str, float] = {}
    engine = open_store(lab.db_url)
    settings = TunnelSettings.from_env(lab.env)
    gateway_public = public_key_of(settings.gateway_private_key())
    with Session(engine) as session, session.begin():
        for i in range(PEERS):
            session.add(UserAccount(username=f"pupil{i:03}", role="pupil", groups=["year9"], source="roster"))
    configs = []
    started = time.perf_counter()
    for i in range(PEERS):
        with Session(engine) as session, session.begin():
            issued = enrolment.enrol(
                session, settings, name=f"lt-{i:03}", username=f"pupil{i:03}", site="", aup_version="v1",
                gateway_public=gateway_public,
            )  # fmt: skip
        configs.append(issued.client_config)
    figures["enrol 200 (ms each)"] = (time.perf_counter() - started) * 1000 / PEERS

    with Session(engine) as session:
        started = time.perf_counter()
        text = enrolment.gateway_text(session, settings)
        figures["gateway_text 200 peers (ms)"] = (time.perf_counter() - started) * 1000
    assert text.count("[Peer]") == PEERS
    started = time.perf_counter()
    lab.netmon("devices", "gateway-config", "-o", str(lab.workdir / "wg-cli.conf"))
    figures["netmon devices gateway-config, whole command (ms)"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    lab.start_gateway()  # wireguard-go, gateway-config --up (wg syncconf of 200 peers), nft, mitmdump
    figures["gateway up incl. mitmdump start (s)"] = time.perf_counter() - started
    peers = lab.exec(lab.gateway, "wg", "show", lab.gw_if, "peers").stdout.split()
    assert len(peers) == PEERS
    started = time.perf_counter()
    lab.netmon("devices", "gateway-config", "-o", str(lab.workdir / "wg-gateway.conf"), "--apply")
    figures["gateway-config --apply (wg syncconf, 200 peers, no change) (ms)"] = (
        time.perf_counter() - started
    ) * 1000

    lab.start_server()
    started = time.perf_counter()
    for n in range(1, BROWSING + 1):
        lab.start_client(n, configs[n * 37 % PEERS])  # devices spread over the pool
    figures[f"{BROWSING} clients up (s)"] = time.perf_counter() - started
    started = time.perf_counter()
    pending = {n: lab.curl_async(n, f"http://{wglab.SERVER_V4}/p{n}") for n in range(1, BROWSING + 1)}
    for n, proc in pending.items():
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and f"ask for /p{n}" in out, out
    figures[f"first page through tunnel + proxy, {BROWSING} at once (s)"] = time.perf_counter() - started
    started = time.perf_counter()
    urls = {n: [f"http://{wglab.SERVER_V4}/p{n}-{i}" for i in range(PAGES)] for n in range(1, BROWSING + 1)}
    pending = {n: lab.curl_async(n, *urls[n]) for n in urls}
    for proc in pending.values():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.count("server saw") == PAGES, out[-300:]
    elapsed = time.perf_counter() - started
    figures[f"{BROWSING} devices x {PAGES} pages at once: total (s)"] = elapsed
    figures["pages/s through tunnel + proxy"] = BROWSING * PAGES / elapsed
    handshakes = lab.latest_handshake(lab.gateway, lab.gw_if)
    assert sum(1 for v in handshakes.values() if v > 0) == BROWSING

    started = time.perf_counter()
    lab.netmon("devices", "list")
    figures["netmon devices list, 200 (whole command, reads handshakes) (ms)"] = (
        time.perf_counter() - started
    ) * 1000
    print()
    for name, value in figures.items():
        print(f"LOAD {name}: {value:.2f}")
    assert figures["gateway_text 200 peers (ms)"] < 2000
    assert figures[f"first page through tunnel + proxy, {BROWSING} at once (s)"] < 20
