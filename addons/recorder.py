"""IncidentRecorder: hands scan results to the batched incident writer (persist first, never block)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from mitmproxy import ctx

from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult

log = logging.getLogger(__name__)

HitFilter = Callable[[FlowContext, Hit], bool]
AfterBatch = Callable[[Any, list[Any]], None]


class IncidentRecorder:
    """Owns the incident writer. Other addons call :meth:`submit` from the event loop.

    A result whose hits the filters keep none of is not handed to the writer at all (the writer would
    build nothing of it): most pages hold only topic words a school's policy does not record, and each
    would cost the proxy's process a queue put, an id and its share of a batch in the writer thread.
    Counted as the writer counts it, ``recording.filtered``.

    ``hit_filters``: callables ``(context, hit) -> bool`` whose answer depends only on the context and the
    hit's ``category`` and ``severity``; ``after_batch``: callables ``(session, incidents)`` run in each
    batch's transaction.

    Fails open for traffic (a store fault never touches a flow) and never loses an incident: the writer
    persists to a spill file when the store is down and replays it.
    """

    def __init__(self) -> None:
        self.writer: Any = None
        self.hit_filters: list[HitFilter] = []
        self.after_batch: list[AfterBatch] = []

    def running(self) -> None:
        from netmon.incidents.writer import IncidentWriter

        opts = ctx.options
        self.writer = IncidentWriter(
            opts.netmon_db,
            dedup_window=timedelta(minutes=opts.netmon_dedup_minutes),
            hit_filter=self._filter if self.hit_filters else None,
            after_batch=tuple(self.after_batch),
            spill_dir=Path(opts.netmon_state_dir),
            site=getattr(opts, "netmon_site", None),
        )
        log.info("incident recorder writing to %s", _safe_url(opts.netmon_db))

    def _filter(self, context: FlowContext, hit: Hit) -> bool:
        return all(f(context, hit) for f in self.hit_filters)

    # Filters registered in ``hit_filters`` decide on the context and the hit's category and severity only
    # (the policy's "is this recorded for this person"), so the writer asks once per category and severity
    # of a result instead of once per hit (netmon.incidents.decisions.located_hits).
    _filter.per_category = True  # type: ignore[attr-defined]

    def submit(self, result: ScanResult) -> None:
        if not result.findings:
            return
        if self.writer is None:
            counters.incr("recorder.not-running")
            log.error("incident recorder not running: result from %s dropped", result.context.host)
            return
        if self.hit_filters and not self._records_any(result):
            # the writer would record nothing of it: spare it the queue, the id and the batch
            counters.incr("recording.filtered")
            return
        self.writer.submit(result)
        counters.incr("recorder.submitted")

    def _records_any(self, result: ScanResult) -> bool:
        """Whether the hit filters keep at least one hit of ``result``: asked once per category and
        severity, as the writer asks (``_filter.per_category``). A filter that fails says yes: the writer
        asks again, counts the fault and records the hit (``recording.filter-errors``)."""
        context, asked = result.context, set()
        for finding in result.findings:
            for hit in finding.hits:
                key = (hit.category, hit.severity)
                if key in asked:
                    continue
                asked.add(key)
                try:
                    if self._filter(context, hit):
                        return True
                except Exception:  # noqa: BLE001 - fail open: the writer decides and records
                    return True
        return False

    def done(self) -> None:
        if self.writer is not None:
            self.writer.close(timeout=30)
            self.writer = None


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a log line
        return "<invalid url>"
