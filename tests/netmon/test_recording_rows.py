"""The batch writer's Core statements store exactly what the ORM version stored (SQLite and PostgreSQL):
the same incidents, counts, times, merges and columns for a fixed set of batches, a NUL in captured text
stored as U+FFFD, and after_batch callables still getting attached Incident objects."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from netmon.incidents import decisions
from netmon.incidents.batches import BatchWriter, Entry
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding
from netmon.store.base import utcnow
from netmon.store.db import make_engine
from netmon.store.incidents import Incident, IncidentMerge

T0 = 1_790_000_000.0
WINDOW = timedelta(minutes=10)


def result(n: int, *, t: float, user: str = "pupil1", site: str = "north", text: str = "") -> ScanResult:
    text = text or f"page {n}: i want to kms now and buy drugs"
    hits = tuple(
        Hit(
            p, cat, sev, "en", f"en/{cat}.txt", 3, text.index(p), text.index(p) + len(p), p, ("casefold",), ()
        )
        for p, cat, sev in (("kms", "suicide", 5), ("drugs", "drugs", 1))
        if p in text
    )
    ctx = FlowContext(
        time=t, client_ip="10.1.2.3", host="chat.example", url=f"https://chat.example/c/{n}", user=user,
        groups=("year9",), site=site,
    )  # fmt: skip
    return ScanResult(
        ctx, (TextFinding("chat", text, hits, "prompt"),), snapshot=b"zs", snapshot_type="text/html"
    )


def batches() -> list[list[Entry]]:
    """Repeats within a batch, across batches, outside the window, on two sites, and a replayed id."""
    a = [
        ("a" * 32, result(1, t=T0)),
        ("b" * 32, result(1, t=T0 + 5)),  # merges into a (same batch)
        ("c" * 32, result(2, t=T0 + 6)),
        ("d" * 32, result(1, t=T0 + 7, site="south")),  # another school: its own incident
        ("e" * 32, result(3, t=T0 + 8, text="nothing but drugs here")),
    ]
    b = [
        ("f" * 32, result(1, t=T0 + 60)),  # merges into a (stored)
        ("b" * 32, result(1, t=T0 + 5)),  # already stored (a merge): skipped
        ("c" * 32, result(2, t=T0 + 6)),  # already stored (an incident): skipped
        ("1" * 32, result(2, t=T0 + 3 * 3600)),  # outside the window: a new incident
        ("2" * 32, result(2, t=T0 - 30)),  # earlier than c, inside the window: c's time moves back
        ("3" * 32, result(4, t=T0 + 9, user="pupil2")),
    ]
    return [a, b]


def orm_write(engine: Any, batch: Sequence[Entry]) -> None:
    """The writer as it was before the Core statements (ORM objects), kept here as the reference."""
    drafts = [(rid, d) for rid, r in batch if (d := decisions.build(r)) is not None]
    with Session(engine, expire_on_commit=False, autoflush=False) as session, session.begin():
        rids = [rid for rid, _ in drafts]
        known = set(session.scalars(select(Incident.uid).where(Incident.uid.in_(rids))))
        known |= set(session.scalars(select(IncidentMerge.rid).where(IncidentMerge.rid.in_(rids))))
        fresh = []
        for rid, draft in drafts:
            if rid not in known:
                known.add(rid)
                fresh.append((rid, draft))
        if not fresh:
            return
        low = min(d.time for _, d in fresh) - WINDOW
        high = max(d.time for _, d in fresh) + WINDOW
        keys = sorted({d.dedup_key for _, d in fresh})
        local: dict[tuple[str, str], list[Incident]] = {}
        stmt = select(Incident).where(
            Incident.dedup_key.in_(keys), Incident.last_seen >= low, Incident.time <= high
        )
        for incident in session.scalars(stmt):
            local.setdefault((incident.site or "", incident.dedup_key), []).append(incident)
        for rid, draft in fresh:
            t = draft.time
            key = (draft.values.get("site", ""), draft.dedup_key)
            candidates = [i for i in local.get(key, ()) if i.last_seen >= t - WINDOW and i.time <= t + WINDOW]
            if not candidates:
                incident = Incident(**{**draft.row(), "uid": rid})
                session.add(incident)
                local.setdefault(key, []).append(incident)
            else:
                incident = max(candidates, key=lambda i: i.last_seen)
                incident.count += 1
                incident.last_seen = max(incident.last_seen, t)
                incident.time = min(incident.time, t)
                session.add(IncidentMerge(rid=rid, incident_uid=incident.uid, time=utcnow()))


def stored(url: str) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        incidents: list[dict[str, Any]] = [
            dict(r) for r in conn.execute(select(Incident.__table__).order_by("id")).mappings()
        ]
        merges = sorted(tuple(r) for r in conn.execute(select(IncidentMerge.rid, IncidentMerge.incident_uid)))
    engine.dispose()
    first = incidents[0]["id"] if incidents else 0
    for row in incidents:
        row["id"] -= first  # ids continue after the reference's rows were deleted
        del row["created_at"]
    return incidents, merges


def clear(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in (Incident.__table__, IncidentMerge.__table__):
            assert isinstance(table, Table)
            conn.execute(delete(table))
    engine.dispose()


def test_core_batches_store_the_same_rows_as_the_orm_writer(store_url: str) -> None:
    engine = make_engine(store_url)
    for batch in batches():
        orm_write(engine, batch)
    reference = stored(store_url)
    clear(store_url)
    writer = BatchWriter(engine, WINDOW, None, (), decisions.CAPTURE_TEXT_CAP, decisions.SNAPSHOT_CAP)
    for batch in batches():
        writer.write(batch)
    engine.dispose()
    incidents, merges = stored(store_url)
    assert len(incidents) == 6 and sorted(r["count"] for r in incidents) == [1, 1, 1, 1, 2, 3]
    assert len(merges) == 3
    assert (incidents, merges) == reference


def test_a_nul_in_captured_text_is_stored_as_a_replacement_character(store_url: str) -> None:
    r = result(7, t=T0, text="page 7: i want to kms\x00 now")
    finding = r.findings[0]
    hit = dataclasses.replace(finding.hits[0], matched_text="kms\x00", steps=("casefold", "nul\x00"))
    r = dataclasses.replace(
        r,
        findings=(TextFinding("chat", finding.text, (hit,), "pro\x00mpt"),),
        evidence={"list": ["a\x00b", {"k": "\x00"}]},
    )
    draft = decisions.build(r)
    assert draft is not None
    assert draft.values == {k: decisions._storable(v) for k, v in draft.values.items()}
    engine = make_engine(store_url)
    BatchWriter(engine, WINDOW, None, (), decisions.CAPTURE_TEXT_CAP, decisions.SNAPSHOT_CAP).write(
        [("n" * 32, r)]
    )
    engine.dispose()
    (row,), _ = stored(store_url)
    assert "kms\ufffd now" in row["capture_text"] and "[chat: pro\ufffdmpt]" in row["capture_text"]
    assert row["explanation"][0]["matched_text"] == "kms\ufffd"
    assert row["explanation"][0]["steps"] == ["casefold", "nul\ufffd"]
    assert row["explanation"][0]["label"] == "pro\ufffdmpt"
    assert row["evidence"] == {"list": ["a\ufffdb", {"k": "\ufffd"}]}


def test_a_result_without_a_nul_keeps_its_values_unchanged() -> None:
    draft = decisions.build(result(1, t=T0))
    assert draft is not None and not decisions._may_hold_nul(draft.values)
    assert draft.values == {k: decisions._storable(v) for k, v in draft.values.items()}
    assert decisions._may_hold_nul({**draft.values, "evidence": {"deep": [("x", "\x00")]}})


def test_after_batch_gets_attached_incidents_and_their_changes_are_stored(store_url: str) -> None:
    seen: list[tuple[int, bool, int, int]] = []

    def callback(session: Session, incidents: list[Incident]) -> None:
        for incident in incidents:
            assert incident in session and incident.id is not None
            seen.append((incident.id, incident.batch_new, incident.batch_repeats, incident.count))
            incident.excerpt = "changed by a callback"

    engine = make_engine(store_url)
    writer = BatchWriter(
        engine, WINDOW, None, (callback,), decisions.CAPTURE_TEXT_CAP, decisions.SNAPSHOT_CAP
    )
    a, b = batches()
    writer.write(a)
    writer.write(b)
    engine.dispose()
    incidents, _ = stored(store_url)
    assert all(r["excerpt"] == "changed by a callback" for r in incidents)
    first = min(i for i, *_ in seen)
    assert [(i - first, *rest) for i, *rest in seen[:4]] == [
        (0, True, 1, 2),
        (1, True, 0, 1),
        (2, True, 0, 1),
        (3, True, 0, 1),
    ]
    assert (0, False, 1, 3) in [(i - first, *rest) for i, *rest in seen[4:]]


def test_a_per_category_filter_is_asked_once_per_category_with_the_same_outcome() -> None:
    calls: list[str] = []

    def records(context: FlowContext, hit: Hit) -> bool:
        calls.append(hit.category)
        return hit.category != "drugs"

    def per_category(context: FlowContext, hit: Hit) -> bool:
        return records(context, hit)

    per_category.per_category = True  # type: ignore[attr-defined]
    text = "kms drugs kms drugs drugs"
    r = result(1, t=T0, text=text)
    hits = tuple(
        Hit(p, c, s, "en", f"en/{c}.txt", 3, i, i + len(p), p, (), ())
        for i, (p, c, s) in enumerate([("kms", "suicide", 5), ("drugs", "drugs", 1)] * 3)
    )
    r = dataclasses.replace(r, findings=(TextFinding("chat", text, hits, "prompt"),))
    every_hit = decisions.build(r, hit_filter=records)
    assert len(calls) == 6
    calls.clear()
    once = decisions.build(r, hit_filter=per_category)
    assert sorted(calls) == ["drugs", "suicide"]
    assert every_hit is not None and once is not None and every_hit.values == once.values
    assert [p["phrase"] for p in once.values["phrases"]] == ["kms"]


def test_the_recorders_filter_is_per_category() -> None:
    from netmon_proxy.recorder import IncidentRecorder

    recorder = IncidentRecorder()
    recorder.hit_filters.append(lambda context, hit: hit.severity >= 3)
    assert recorder._filter.per_category is True  # type: ignore[attr-defined]
    engine = make_engine("sqlite://")
    writer = BatchWriter(
        engine, WINDOW, recorder._filter, (), decisions.CAPTURE_TEXT_CAP, decisions.SNAPSHOT_CAP
    )
    draft = writer._build(result(1, t=T0))
    assert draft is not None and [p["phrase"] for p in draft.values["phrases"]] == ["kms"]
    engine.dispose()
