"""One batch of scan results into the store, in one transaction: incident drafts
(``netmon.incidents.decisions.build``, after the hit filter), de-duplication against the store and within
the batch, and the ``after_batch`` callbacks (alert rules write their outbox rows in the same
transaction). Each incident passed to them carries ``batch_new`` and ``batch_repeats``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from netmon.incidents import decisions as incidents
from netmon.incidents.decisions import HitFilter, IncidentDraft
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult
from netmon.store.incidents import Incident

log = logging.getLogger("netmon.incidents.writer")

AfterBatch = Callable[[Session, list[Incident]], None]


class BatchWriter:
    """Writes batches of results as incidents (see the module documentation)."""

    def __init__(
        self,
        engine: Engine,
        dedup_window: timedelta,
        hit_filter: HitFilter | None,
        after_batch: Sequence[AfterBatch],
        capture_cap: int,
        snapshot_cap: int,
    ) -> None:
        self.engine = engine
        self.dedup_window = dedup_window
        self.hit_filter = hit_filter
        self.after_batch = tuple(after_batch)
        self.capture_cap = capture_cap
        self.snapshot_cap = snapshot_cap

    def write(self, batch: Sequence[ScanResult]) -> None:
        """Record ``batch`` in one transaction (raises what the store raises: the caller spills)."""
        drafts = [d for d in (self._build(r) for r in batch) if d is not None]
        counters.incr("recording.filtered", len(batch) - len(drafts))
        if not drafts:
            return
        window = self.dedup_window
        with Session(self.engine, expire_on_commit=False, autoflush=False) as session, session.begin():
            touched: dict[int, Incident] = {}
            local = self._recent(session, drafts)
            for draft in drafts:
                t = draft.time
                candidates = [
                    i
                    for i in local.get(draft.dedup_key, ())
                    if i.last_seen >= t - window and i.time <= t + window
                ]
                if not candidates:
                    incident = self._new(session, draft)
                    local.setdefault(draft.dedup_key, []).append(incident)
                else:
                    incident = max(candidates, key=lambda i: i.last_seen)
                    incident.count += 1
                    incident.last_seen = max(incident.last_seen, t)
                    incident.time = min(incident.time, t)
                    incident.batch_repeats += 1
                    counters.incr("recording.merged")
                touched[id(incident)] = incident
            session.flush()
            for callback in self.after_batch:
                callback(session, list(touched.values()))
        counters.incr("recording.batches")
        for incident in touched.values():
            if incident.batch_new:
                counters.incr("recording.new")
                log.info(
                    "incident %s recorded: %s severity %d (%s)",
                    incident.uid,
                    incident.category,
                    incident.severity,
                    incident.source,
                )

    def _recent(self, session: Session, drafts: Sequence[IncidentDraft]) -> dict[str, list[Incident]]:
        """Stored incidents that drafts of this batch may merge into, by dedup key (one query a chunk)."""
        window = self.dedup_window
        low = min(d.time for d in drafts) - window
        high = max(d.time for d in drafts) + window
        keys = sorted({d.dedup_key for d in drafts})
        found: dict[str, list[Incident]] = {}
        for start in range(0, len(keys), 500):
            stmt = select(Incident).where(
                Incident.dedup_key.in_(keys[start : start + 500]),
                Incident.last_seen >= low,
                Incident.time <= high,
            )
            for incident in session.scalars(stmt):
                incident.batch_new, incident.batch_repeats = False, 0
                found.setdefault(incident.dedup_key, []).append(incident)
        return found

    def _new(self, session: Session, draft: IncidentDraft) -> Incident:
        incident = Incident(**draft.row())
        incident.batch_new, incident.batch_repeats = True, 0
        session.add(incident)
        return incident

    def _build(self, result: ScanResult) -> IncidentDraft | None:
        return incidents.build(
            result,
            hit_filter=self._filter if self.hit_filter else None,
            capture_cap=self.capture_cap,
            snapshot_cap=self.snapshot_cap,
        )

    def _filter(self, context: FlowContext, hit: Hit) -> bool:
        assert self.hit_filter is not None
        try:
            return bool(self.hit_filter(context, hit))
        except Exception:  # noqa: BLE001 - a policy fault records the hit rather than losing it
            counters.incr("recording.filter-errors")
            log.exception("hit filter failed for a %s hit; recording it", hit.category)
            return True
