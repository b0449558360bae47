"""Two school gateways of one trust, each a real `netmon run` in its own network namespace, writing to
ONE real PostgreSQL reachable only over each school's link (a veth pair). Pupils search; the links are
cut while they go on searching (browsing must go on: fail open; incidents spill to each gateway's disk);
the links come back and the spill files replay. Every incident is then in the store exactly once, with
its school's site, and a site-scoped export shows that school only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from netmon.store.alerts import Alert
from netmon.store.db import make_engine, upgrade
from netmon.store.incidents import AuditEvent, Incident
from tests.trust.lab import REPO, Gateway, TrustLab, unavailable_reason

pytestmark = [pytest.mark.netns]

SITES = ["school-a", "school-b"]
BEFORE, DURING = 6, 8  # searches per school with the link up, then while it is cut
ROUTES = json.dumps({"www.bing.com": 8000})  # the school's own upstream on its loopback


def search(n: int, site: str) -> str:
    return f"http://www.bing.com/search?q=how+to+kill+myself+{site}+{n}"


@pytest.fixture(scope="module")
def lab() -> Iterator[TrustLab]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    trust = TrustLab()
    try:
        trust.create(SITES)
        trust.start_postgres()
        upgrade(trust.local_url("trust"))  # the schema once, before two gateways race to make it
        for gw in trust.gateways:
            trust.start_gateway(gw, "trust", ROUTES)
        for gw in trust.gateways:
            trust.wait_ready(gw, "http://www.bing.com/")
        yield trust
    finally:
        trust.remove()


def per_site(lab: TrustLab) -> dict[str, list[tuple[str, int]]]:
    """(url, count) of every stored incident, by site, read over the trust's own socket."""
    engine = make_engine(lab.local_url("trust"))
    try:
        with Session(engine) as session:
            rows = session.execute(select(Incident.site, Incident.url, Incident.count)).all()
    finally:
        engine.dispose()
    found: dict[str, list[tuple[str, int]]] = {}
    for site, url, count in rows:
        found.setdefault(site, []).append((url, count))
    return {site: sorted(v) for site, v in found.items()}


def wait_for(what: str, check: Callable[[], bool], lab: TrustLab, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    logs = "\n".join(f"--- {g.site}\n{g.log()[-3000:]}" for g in lab.gateways)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def browse(gw: Gateway, numbers: range) -> list[int]:
    return [gw.get(search(n, gw.site))[0] for n in numbers]


def test_two_gateways_cut_off_and_back_lose_nothing_and_write_nothing_twice(lab: TrustLab) -> None:
    a, b = lab.gateways
    for gw in (a, b):
        assert browse(gw, range(BEFORE)) == [200] * BEFORE
    wait_for(
        "the first searches of both schools in the store",
        lambda: {s: len(v) for s, v in per_site(lab).items()} == {"school-a": BEFORE, "school-b": BEFORE},
        lab,
    )

    for gw in (a, b):
        lab.cut(gw)
    started = time.monotonic()
    for gw in (a, b):  # the pupils go on browsing: every page still arrives
        assert browse(gw, range(BEFORE, BEFORE + DURING)) == [200] * DURING
    browsing = time.monotonic() - started
    wait_for(
        "each school's searches in its own spill file", lambda: a.spilled() == b.spilled() == DURING, lab
    )
    spilled_after = time.monotonic() - started
    assert {s: len(v) for s, v in per_site(lab).items()} == {"school-a": BEFORE, "school-b": BEFORE}

    for gw in (a, b):
        lab.restore(gw)
    restored = time.monotonic()
    total = BEFORE + DURING
    wait_for(
        "the spill files replayed",
        lambda: a.spilled() == b.spilled() == 0 and sum(len(v) for v in per_site(lab).values()) >= 2 * total,
        lab,
        timeout=120,
    )
    replayed_after = time.monotonic() - restored
    time.sleep(1)  # anything still on its way would show up as a duplicate now
    stored = per_site(lab)
    assert set(stored) == set(SITES)
    for gw in (a, b):  # each search once, at its own school: none lost, none twice, none at the other
        assert stored[gw.site] == sorted((search(n, gw.site), 1) for n in range(total))
    print(
        f"store cut off: {2 * DURING} pages browsed in {browsing:.1f}s, all spilled {spilled_after:.1f}s "
        f"after the cut; replayed {replayed_after:.1f}s after the link came back"
    )

    # A site-scoped export shows only its school; without --site it is the whole trust.
    def export(*args: str) -> list[dict[str, object]]:
        out = subprocess.run(
            [sys.executable, "-m", "netmon", "export", "--db", lab.local_url("trust"), *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        return [json.loads(line) for line in out.stdout.splitlines()]

    only_b = export("--site", "school-b")
    assert len(only_b) == total and {r["site"] for r in only_b} == {"school-b"}
    trust = export()
    assert len(trust) == 2 * total and {r["site"] for r in trust} == set(SITES)
    engine = make_engine(lab.local_url("trust"))
    with Session(engine) as session:
        assert session.scalar(select(func.count(func.distinct(Incident.uid)))) == 2 * total
        # Each incident's alert was written once, in its batch, with the incident's site.
        alerts = session.execute(
            select(Incident.site, Alert.site, Alert.incident_uid).join(
                Alert, Alert.incident_uid == Incident.uid
            )
        ).all()
        audit_sites = set(
            session.scalars(select(AuditEvent.site).where(AuditEvent.action.startswith("alert.")))
        )
    engine.dispose()
    assert sorted(uid for _, _, uid in alerts) == sorted({uid for _, _, uid in alerts})
    assert len(alerts) == 2 * total and all(site == alert_site for site, alert_site, _ in alerts)
    assert audit_sites == set(SITES)  # the gateways' own audit rows carry their NETMON_SITE
