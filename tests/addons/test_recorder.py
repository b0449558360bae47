"""IncidentRecorder asks the hit filters before the writer's queue: a result they keep nothing of never
reaches the writer, and what is stored is exactly what the writer stores when it is given every result
and decides itself (SQLite and PostgreSQL). A filter that fails records the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mitmproxy.test import taddons
from netmon_proxy.recorder import IncidentRecorder
from netmon_proxy.settings import Settings
from sqlalchemy import Table, delete, select

from netmon.incidents.writer import IncidentWriter
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding
from netmon.store.db import make_engine
from netmon.store.incidents import Incident, IncidentMerge

T0 = 1_790_000_000.0
PHRASES = {
    "kms": ("suicide", 5),
    "drugs": ("drugs", 1),
    "gambling": ("gambling", 1),
    "idiot": ("bullying", 3),
}


def result(n: int, text: str, *, user: str = "pupil1", t: float = T0) -> ScanResult:
    hits = tuple(
        Hit(p, cat, sev, "en", f"en/{cat}.txt", 3, i, i + len(p), p, ("casefold",), ())
        for p, (cat, sev) in PHRASES.items()
        for i in [text.find(p)]
        if i >= 0
    )
    context = FlowContext(
        time=t + n, client_ip="10.1.2.3", host="chat.example", url=f"https://chat.example/c/{n % 3}",
        user=user, role="student", year_group="9", groups=("year9",), site="north",
    )  # fmt: skip
    return ScanResult(
        context, (TextFinding("chat", text, hits, "prompt"),), snapshot=b"zs", snapshot_type="t"
    )


def results() -> list[ScanResult]:
    """Topic words only (left out by the filter for pupils), serious hits, mixed, staff, repeats."""
    texts = ["buy drugs", "drugs and gambling", "i want to kms", "drugs then kms", "you idiot", "gambling"]
    users = ["pupil1", "pupil2", "staff1", "pupil3"]
    return [result(n, texts[n % len(texts)], user=users[n % len(users)]) for n in range(60)]


def records(context: FlowContext, hit: Hit) -> bool:
    """A policy's shape: topic words are recorded for staff only, serious hits for everyone."""
    return hit.severity >= 3 or context.user == "staff1"


def stored(url: str) -> tuple[list[dict[str, Any]], int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [
            dict(r) for r in conn.execute(select(Incident.__table__).order_by("time", "dedup_key")).mappings()
        ]
        merges = len(conn.execute(select(IncidentMerge.rid)).all())
    with engine.begin() as conn:
        for table in (IncidentMerge.__table__, Incident.__table__):
            assert isinstance(table, Table)
            conn.execute(delete(table))
    engine.dispose()
    for row in rows:
        for key in ("id", "uid", "created_at"):  # new on every write
            del row[key]
    return rows, merges


def test_results_the_filters_keep_nothing_of_skip_the_writer_and_the_rows_are_the_same(
    store_url: str, tmp_path: Path
) -> None:
    # the reference: every result handed to the writer, which asks the filter itself
    reference = IncidentRecorder()
    reference.hit_filters.append(records)
    writer = IncidentWriter(
        store_url, hit_filter=reference._filter, spill_dir=tmp_path / "a", flush_interval=0.02
    )
    for r in results():
        writer.submit(r)
    assert writer.flush()
    writer.close()
    expected = stored(store_url)

    recorder = IncidentRecorder()
    recorder.hit_filters.append(records)
    counters.reset()
    with taddons.context(Settings(), recorder) as tctx:
        tctx.configure(recorder, netmon_db=store_url, netmon_state_dir=str(tmp_path / "b"))
        recorder.running()
        try:
            for r in results():
                recorder.submit(r)
            assert recorder.writer.flush()
        finally:
            recorder.done()
    seen = counters.snapshot()
    counters.reset()
    # pupils' pages of topic words alone (3 of 6 texts, 3 of 4 users): never queued for the writer
    assert seen.get("recording.filtered") == 25
    assert seen.get("recording.submitted") == seen.get("recorder.submitted") == 35
    rows, merges = stored(store_url)
    assert (rows, merges) == expected
    assert rows and merges and {r["category"] for r in rows} == {"suicide", "bullying", "drugs"}
    assert {r["user"] for r in rows if r["severity"] < 3} == {"staff1"}


def test_a_filter_that_fails_records_the_result(store_url: str, tmp_path: Path) -> None:
    def broken(context: FlowContext, hit: Hit) -> bool:
        raise RuntimeError("policy fault")

    recorder = IncidentRecorder()
    recorder.hit_filters.append(broken)
    counters.reset()
    with taddons.context(Settings(), recorder) as tctx:
        tctx.configure(recorder, netmon_db=store_url, netmon_state_dir=str(tmp_path))
        recorder.running()
        try:
            recorder.submit(result(1, "buy drugs"))
            assert recorder.writer.flush()
        finally:
            recorder.done()
    seen = counters.snapshot()
    counters.reset()
    rows, _ = stored(store_url)
    assert [(r["category"], r["phrase"]) for r in rows] == [("drugs", "drugs")]
    assert seen.get("recording.filter-errors") == 1 and not seen.get("recording.filtered")
