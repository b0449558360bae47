"""One batch of scan results into the store, in one transaction: incident drafts
(``netmon.incidents.decisions.build``, after the hit filter), de-duplication against the store and within
the batch, and the ``after_batch`` callbacks (alert rules write their outbox rows in the same
transaction). Each incident passed to them carries ``batch_new`` and ``batch_repeats``.

Every result comes with the id it was given when it was submitted (``rid``, 32 random hex characters,
kept in the spill file). Writing is idempotent by it, so a batch replayed after a lost commit
acknowledgement (the store committed, the gateway never heard) is not recorded twice: a result that
created an incident made the incident's uid its id, one merged into an incident left an
``incident_merges`` row, and a result already known either way is skipped (``recording.already``).
De-duplication stays within a site: two schools of a trust may hand out the same addresses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from netmon.incidents import decisions as incidents
from netmon.incidents.decisions import HitFilter, IncidentDraft
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult
from netmon.store.base import utcnow
from netmon.store.incidents import Incident, IncidentMerge

log = logging.getLogger("netmon.incidents.writer")

AfterBatch = Callable[[Session, list[Incident]], None]
#: A scan result with the id it was given when submitted.
Entry = tuple[str, ScanResult]
#: How long a merged result's id is kept (a spill older than this replays without the duplicate check).
MERGE_KEEP = timedelta(days=90)


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
        self._next_prune = 0.0

    def write(self, batch: Sequence[Entry]) -> None:
        """Record ``batch`` in one transaction (raises what the store raises: the caller spills)."""
        built = [(rid, self._build(r)) for rid, r in batch]
        drafts = [(rid, d) for rid, d in built if d is not None]
        counters.incr("recording.filtered", len(batch) - len(drafts))
        if not drafts:
            return
        window = self.dedup_window
        with Session(self.engine, expire_on_commit=False, autoflush=False) as session, session.begin():
            known = self._known(session, [rid for rid, _ in drafts])
            fresh = []
            for rid, draft in drafts:
                if rid not in known:
                    known.add(rid)
                    fresh.append((rid, draft))
            counters.incr("recording.already", len(drafts) - len(fresh))
            if not fresh:
                return
            touched: dict[int, Incident] = {}
            local = self._recent(session, [d for _, d in fresh])
            for rid, draft in fresh:
                t = draft.time
                key = (draft.values.get("site", ""), draft.dedup_key)
                candidates = [
                    i for i in local.get(key, ()) if i.last_seen >= t - window and i.time <= t + window
                ]
                if not candidates:
                    incident = self._new(session, draft, rid)
                    local.setdefault(key, []).append(incident)
                else:
                    incident = max(candidates, key=lambda i: i.last_seen)
                    incident.count += 1
                    incident.last_seen = max(incident.last_seen, t)
                    incident.time = min(incident.time, t)
                    incident.batch_repeats += 1
                    session.add(IncidentMerge(rid=rid, incident_uid=incident.uid, time=utcnow()))
                    counters.incr("recording.merged")
                touched[id(incident)] = incident
            self._prune(session)
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

    @staticmethod
    def _known(session: Session, rids: Sequence[str]) -> set[str]:
        """Which of ``rids`` the store already holds (as an incident's uid, or a merged result)."""
        found: set[str] = set()
        for start in range(0, len(rids), 500):
            chunk = rids[start : start + 500]
            found.update(session.scalars(select(Incident.uid).where(Incident.uid.in_(chunk))))
            found.update(session.scalars(select(IncidentMerge.rid).where(IncidentMerge.rid.in_(chunk))))
        return found

    def _prune(self, session: Session) -> None:
        """Forget merged results' ids after MERGE_KEEP (at most once an hour)."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 3600
        session.execute(delete(IncidentMerge).where(IncidentMerge.time < utcnow() - MERGE_KEEP))

    def _recent(
        self, session: Session, drafts: Sequence[IncidentDraft]
    ) -> dict[tuple[str, str], list[Incident]]:
        """Stored incidents that drafts of this batch may merge into, by (site, dedup key); one query a
        chunk."""
        window = self.dedup_window
        low = min(d.time for d in drafts) - window
        high = max(d.time for d in drafts) + window
        keys = sorted({d.dedup_key for d in drafts})
        found: dict[tuple[str, str], list[Incident]] = {}
        for start in range(0, len(keys), 500):
            stmt = select(Incident).where(
                Incident.dedup_key.in_(keys[start : start + 500]),
                Incident.last_seen >= low,
                Incident.time <= high,
            )
            for incident in session.scalars(stmt):
                incident.batch_new, incident.batch_repeats = False, 0
                found.setdefault((incident.site or "", incident.dedup_key), []).append(incident)
        return found

    def _new(self, session: Session, draft: IncidentDraft, rid: str) -> Incident:
        incident = Incident(**{**draft.row(), "uid": rid})
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
