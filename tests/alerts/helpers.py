"""Scan results for the real incident writer, and a writer wired to the alert rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from netmon.alerts.rules import RuleEngine
from netmon.config.policy import Policy, hit_filter
from netmon.incidents.writer import IncidentWriter
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding


def result(
    *,
    user: str | None = "pupil1",
    phrase: str = "cut myself",
    category: str = "self_harm",
    severity: int = 4,
    text: str | None = None,
    url: str = "https://example.org/a",
    source: str = "page",
    t: float | None = None,
    groups: tuple[str, ...] = (),
    role: str | None = "pupil",
    year_group: str | None = "9",
    site: str = "",
    client_ip: str = "10.0.0.5",
    device: str | None = None,
) -> ScanResult:
    text = text if text is not None else f"some words then {phrase} and more words"
    start = text.index(phrase)
    hit = Hit(
        phrase,
        category,
        severity,
        "en",
        f"en/{category}.txt",
        7,
        start,
        start + len(phrase),
        phrase,
        ("casefold",),
        (),
    )
    ctx = FlowContext(
        time=t if t is not None else time.time(),
        client_ip=client_ip,
        host="example.org",
        url=url,
        user=user,
        role=role,
        year_group=year_group,
        groups=groups,
        site=site,
        device=device,
    )
    return ScanResult(context=ctx, findings=(TextFinding(source, text, (hit,)),))


@contextmanager
def writer(url: str, policy: Policy, tmp_path: Path) -> Iterator[IncidentWriter]:
    """The real incident writer with the policy's hit filter and the alert rules, as the proxy wires it."""
    w = IncidentWriter(
        url,
        hit_filter=hit_filter(policy),
        after_batch=(RuleEngine(policy),),
        spill_dir=tmp_path / "state",
        flush_interval=0.05,
    )
    try:
        yield w
    finally:
        w.close(timeout=30)


def record(w: IncidentWriter, *results: ScanResult) -> None:
    for r in results:
        w.submit(r)
    assert w.flush(timeout=30)
