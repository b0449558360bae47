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
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, union_all, update
from sqlalchemy.orm import Session, make_transient_to_detached

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
INCIDENTS = cast(Table, Incident.__table__)
MERGES = cast(Table, IncidentMerge.__table__)
COLUMNS = tuple(c.key for c in INCIDENTS.columns)
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
        self._checked: HitFilter | None = None
        if hit_filter is not None:
            self._checked = self._filter
            if getattr(hit_filter, "per_category", False):  # see decisions.located_hits
                self._checked = lambda context, hit: self._filter(context, hit)
                self._checked.per_category = True  # type: ignore[attr-defined]
        self.after_batch = tuple(after_batch)
        self.capture_cap = capture_cap
        self.snapshot_cap = snapshot_cap
        self._next_prune = 0.0

    def write(self, batch: Sequence[Entry]) -> None:
        """Record ``batch`` in one transaction (raises what the store raises: the caller spills).

        Core statements, not ORM units of work: one query for the ids already stored, one for the
        incidents drafts may merge into, one multi-row INSERT of the new incidents, one executemany
        UPDATE of the merged ones and one INSERT of the merge rows. ``after_batch`` callables still get
        :class:`Incident` objects, attached to the session as if loaded (clean), built only when there are
        callables."""
        built = [(rid, self._build(r)) for rid, r in batch]
        drafts = [(rid, d) for rid, d in built if d is not None]
        counters.incr("recording.filtered", len(batch) - len(drafts))
        if not drafts:
            return
        window = self.dedup_window
        with Session(self.engine, expire_on_commit=False, autoflush=False) as session, session.begin():
            conn = session.connection()
            known = self._known(conn, [rid for rid, _ in drafts])
            fresh = []
            for rid, draft in drafts:
                if rid not in known:
                    known.add(rid)
                    fresh.append((rid, draft))
            counters.incr("recording.already", len(drafts) - len(fresh))
            if not fresh:
                return
            touched: dict[int, dict[str, Any]] = {}
            new_rows: list[dict[str, Any]] = []
            merges: list[dict[str, Any]] = []
            local = self._recent(conn, [d for _, d in fresh])
            now = utcnow()
            for rid, draft in fresh:
                t = draft.time
                key = (draft.values.get("site", ""), draft.dedup_key)
                candidates = [
                    i for i in local.get(key, ()) if i["last_seen"] >= t - window and i["time"] <= t + window
                ]
                if not candidates:
                    incident = {**draft.row(), "uid": rid, "created_at": now}
                    new_rows.append(incident)
                    incident.update(batch_new=True, batch_repeats=0)
                    local.setdefault(key, []).append(incident)
                else:
                    incident = max(candidates, key=lambda i: i["last_seen"])
                    incident["count"] += 1
                    incident["last_seen"] = max(incident["last_seen"], t)
                    incident["time"] = min(incident["time"], t)
                    incident["batch_repeats"] += 1
                    merges.append({"rid": rid, "incident_uid": incident["uid"], "time": now})
                    counters.incr("recording.merged")
                touched[id(incident)] = incident
            self._store(conn, new_rows, [i for i in touched.values() if not i["batch_new"]], merges)
            self._prune(conn)
            if self.after_batch:
                objects = [_attached(session, i) for i in touched.values()]
                for callback in self.after_batch:
                    callback(session, objects)
        counters.incr("recording.batches")
        for incident in touched.values():
            if incident["batch_new"]:
                counters.incr("recording.new")
                log.info(
                    "incident %s recorded: %s severity %d (%s)",
                    incident["uid"],
                    incident["category"],
                    incident["severity"],
                    incident["source"],
                )

    @staticmethod
    def _store(
        conn: Connection,
        new: list[dict[str, Any]],
        merged: list[dict[str, Any]],
        merges: list[dict[str, Any]],
    ) -> None:
        """The batch's statements, in the order the ORM used to emit them: new incidents (their ids in
        order), merges' rows, then the merged incidents' counts and times."""
        if new:
            ids = conn.execute(
                insert(INCIDENTS).returning(INCIDENTS.c.id, sort_by_parameter_order=True),
                [{k: i[k] for k in COLUMNS if k in i} for i in new],  # every column but the id
            ).scalars()
            for incident, id_ in zip(new, ids, strict=True):
                incident["id"] = id_
        if merges:
            conn.execute(insert(MERGES), merges)
        if merged:
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == bindparam("b_id", type_=INCIDENTS.c.id.type))
                .values(
                    count=bindparam("b_count", type_=INCIDENTS.c.count.type),
                    last_seen=bindparam("b_last", type_=INCIDENTS.c.last_seen.type),
                    time=bindparam("b_time", type_=INCIDENTS.c.time.type),
                ),
                [
                    {"b_id": i["id"], "b_count": i["count"], "b_last": i["last_seen"], "b_time": i["time"]}
                    for i in merged
                ],
            )

    @staticmethod
    def _known(conn: Connection, rids: Sequence[str]) -> set[str]:
        """Which of ``rids`` the store already holds (as an incident's uid, or a merged result)."""
        found: set[str] = set()
        for start in range(0, len(rids), 500):
            chunk = rids[start : start + 500]
            stmt = union_all(
                select(INCIDENTS.c.uid).where(INCIDENTS.c.uid.in_(chunk)),
                select(MERGES.c.rid).where(MERGES.c.rid.in_(chunk)),
            )
            found.update(conn.execute(stmt).scalars())
        return found

    def _prune(self, conn: Connection) -> None:
        """Forget merged results' ids after MERGE_KEEP (at most once an hour)."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 3600
        conn.execute(delete(MERGES).where(MERGES.c.time < utcnow() - MERGE_KEEP))

    def _recent(
        self, conn: Connection, drafts: Sequence[IncidentDraft]
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Stored incidents that drafts of this batch may merge into, by (site, dedup key), as plain dicts
        of their columns; one query a chunk."""
        window = self.dedup_window
        low = min(d.time for d in drafts) - window
        high = max(d.time for d in drafts) + window
        keys = sorted({d.dedup_key for d in drafts})
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for start in range(0, len(keys), 500):
            stmt = select(INCIDENTS).where(
                INCIDENTS.c.dedup_key.in_(keys[start : start + 500]),
                INCIDENTS.c.last_seen >= low,
                INCIDENTS.c.time <= high,
            )
            for row in conn.execute(stmt).mappings():
                incident = {**row, "batch_new": False, "batch_repeats": 0}
                found.setdefault((incident["site"] or "", incident["dedup_key"]), []).append(incident)
        return found

    def _build(self, result: ScanResult) -> IncidentDraft | None:
        return incidents.build(
            result,
            hit_filter=self._checked,
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


def _attached(session: Session, incident: dict[str, Any]) -> Incident:
    """An :class:`Incident` for ``after_batch`` callables with the stored values, in ``session`` as if
    loaded (a change a callable makes is flushed as an UPDATE, as before)."""
    obj = Incident(**{k: incident[k] for k in COLUMNS})
    make_transient_to_detached(obj)
    session.add(obj)
    obj.batch_new, obj.batch_repeats = incident["batch_new"], incident["batch_repeats"]
    return obj
