"""The batched incident writer: scan results in, incidents in the store out, nothing lost.

``IncidentWriter.submit(result)`` is called from the proxy's event loop: it never blocks (a ``put_nowait``
on a bounded queue). One writer THREAD drains the queue in batches, one transaction per batch:

- each result becomes an incident draft (:func:`netmon.incidents.decisions.build`, after ``hit_filter``);
- de-duplication against the store: the same ``dedup_key`` whose ``last_seen`` is within ``dedup_window``
  of the result's time raises ``count`` and ``last_seen`` instead of adding a row (also within a batch);
- ``after_batch`` callables ``(session, incidents)`` run inside the same transaction before the commit, so
  alert rules write their outbox rows atomically with the incidents. Each incident passed carries two
  plain attributes for them: ``batch_new`` (created by this batch) and ``batch_repeats`` (results merged
  into it by this batch).

When the queue is full, or the database cannot be written (down, locked, unreachable), the pending
results are appended to a spill file (JSONL, ``<spill_dir>/incident-spill.jsonl``); the writer retries
every ``retry_interval`` seconds and replays the spill file once the store is back, and at the next start.
Replay progress is recorded after each committed batch, so a crash during replay does not count twice.
``close(timeout)`` flushes everything (to the store, or to the spill file when the store is down).

Counters (``netmon.ops.counters``): ``recording.submitted``, ``.overflow``, ``.batches``, ``.new``,
``.merged``, ``.filtered``, ``.spilled``, ``.replayed``, ``.db-errors``, ``.rejected``, ``.filter-errors``,
``.spill-errors``, ``.spill-corrupt``, ``.writer-errors``.
"""

from __future__ import annotations

import base64
import collections
import fcntl
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from netmon.config.paths import state_dir
from netmon.errors import StoreError
from netmon.incidents import decisions as incidents
from netmon.incidents.decisions import HitFilter, IncidentDraft
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult, ScanStats, TextFinding
from netmon.store.db import make_engine, upgrade
from netmon.store.incidents import Incident

log = logging.getLogger(__name__)

AfterBatch = Callable[[Session, list[Incident]], None]
SPILL_NAME = "incident-spill.jsonl"
#: Errors that mean "the store cannot be written now" (down, unreachable, locked): spill, retry later.
STORE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, StoreError)


def store_down(exc: BaseException) -> bool:
    """True when ``exc`` says the store is unavailable (as opposed to a bug or a bad row)."""
    return isinstance(exc, STORE_DOWN) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class IncidentWriter:
    """Records scan results as incidents from a background thread; see the module documentation."""

    def __init__(
        self,
        url: str,
        *,
        dedup_window: timedelta = timedelta(minutes=10),
        hit_filter: HitFilter | None = None,
        after_batch: Iterable[AfterBatch] = (),
        spill_dir: Path | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        linger: float = 0.25,
        retry_interval: float = 5.0,
        capture_cap: int = incidents.CAPTURE_TEXT_CAP,
        snapshot_cap: int = incidents.SNAPSHOT_CAP,
        busy_timeout: float | None = None,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.dedup_window = dedup_window
        self.hit_filter = hit_filter
        self.after_batch = tuple(after_batch)
        self.spill_path = Path(spill_dir or state_dir()) / SPILL_NAME
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.linger = linger
        self.retry_interval = retry_interval
        self.capture_cap = capture_cap
        self.snapshot_cap = snapshot_cap
        self.migrate = migrate
        self._queue: queue.Queue[ScanResult] = queue.Queue(maxsize=queue_size)
        self._overflow: collections.deque[ScanResult] = collections.deque()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0  # submitted but neither committed nor spilled yet
        self._pending_lock = threading.Lock()
        self._down = False
        self._next_retry = 0.0
        self._closed = False
        self._submit_lock = threading.Lock()
        self._last_spill_error = 0.0
        self.engine = self._make_engine(url, busy_timeout)
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="netmon-incident-writer", daemon=True)
        self._thread.start()

    # ---- called from the event loop (or any thread) ------------------------------------------------

    def submit(self, result: ScanResult) -> None:
        """Queue ``result`` for recording; never blocks. A full queue sends it to the spill file."""
        counters.incr("recording.submitted")
        with self._pending_lock:
            self._pending += 1
        with self._submit_lock:  # held for a moment only: close() flips ``_closed`` under it
            if not self._closed:
                try:
                    self._queue.put_nowait(result)
                except queue.Full:
                    self._overflow.append(result)  # the writer thread moves it to the spill file
                    counters.incr("recording.overflow")
                return
        self._spill([result])  # after close(): straight to the spill file, replayed at the next start
        self._done(1)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted result is committed or spilled; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer: write everything queued (or spill it when the store is down)."""
        if self._closed:
            return
        self._stop.set()
        self._thread.join(timeout)
        with self._submit_lock:
            self._closed = True
        if self._thread.is_alive():  # store too slow: whatever is still queued goes to the spill file
            log.warning("incident writer did not finish in %.0fs; spilling what is left", timeout)
        left = self._take_all()
        if left:
            self._spill(left)
            self._done(len(left))
        self.engine.dispose()

    @property
    def store_down(self) -> bool:
        return self._down

    # ---- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        started = False
        while True:
            try:
                if not started:
                    started = True
                    self._recover()
                if self._step():
                    return
            except Exception:  # noqa: BLE001 - the writer thread must outlive any single fault
                counters.incr("recording.writer-errors")
                log.exception("incident writer fault; carrying on")
                time.sleep(1)

    def _step(self) -> bool:
        """One turn of the writer thread; True when it is time to stop."""
        batch = self._take()
        self._spill_overflow()
        if batch:
            if self._down:
                self._spill(batch)
            else:
                self._write_or_spill(batch)
            self._done(len(batch))
        if self._down:
            if time.monotonic() >= self._next_retry and not self._stop.is_set():
                self._recover()
        elif self._queue.empty() and self._spill_pending():
            self._replay()
        return self._stop.is_set() and self._queue.empty() and not self._overflow

    def _take(self) -> list[ScanResult]:
        try:
            batch = [self._queue.get(timeout=self.flush_interval)]
        except queue.Empty:
            return []
        # Linger briefly so that a busy proxy writes tens of results per transaction rather than one:
        # the writer shares the proxy's GIL, and per-transaction work is what costs it (bench/).
        deadline = time.monotonic() + self.linger
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                get = self._queue.get
                batch.append(get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _take_all(self) -> list[ScanResult]:
        items: list[ScanResult] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        while self._overflow:
            items.append(self._overflow.popleft())
        return items

    def _spill_overflow(self) -> None:
        items: list[ScanResult] = []
        while self._overflow:
            items.append(self._overflow.popleft())
        if items:
            self._spill(items)
            self._done(len(items))

    def _done(self, n: int) -> None:
        with self._pending_lock:
            self._pending -= n
        with self._idle:
            self._idle.notify_all()

    def _recover(self) -> None:
        """(Re)connect: migrate when asked, then replay the spill file. Marks the store down on failure."""
        if self.migrate:
            try:
                upgrade(self.url)
            except STORE_DOWN as exc:
                self._mark_down(exc)
                return
        was_down = self._down
        if self._replay():
            self._down = False
            if was_down:
                log.warning("incident store %s is writable again", _safe(self.url))

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "incident store %s cannot be written (%s); spilling to %s and retrying every %.0fs",
                _safe(self.url),
                exc.__class__.__name__,
                self.spill_path,
                self.retry_interval,
            )
        counters.incr("recording.db-errors")
        self._down = True
        self._next_retry = time.monotonic() + self.retry_interval

    def _write_or_spill(self, batch: Sequence[ScanResult]) -> bool:
        """Write ``batch`` in one transaction; spill it when the store is down. True when written."""
        try:
            self._write(batch)
            return True
        except Exception as exc:  # noqa: BLE001 - a bug in a callback or a bad result must not lose the batch
            if store_down(exc):
                self._mark_down(exc)
                self._spill(batch)
                return False
            log.exception("incident batch failed; retrying its %d results one by one", len(batch))
        for i, result in enumerate(batch):
            try:
                self._write([result])
            except Exception as exc:  # noqa: BLE001 - isolate the one bad result, keep it for a human
                if store_down(exc):
                    self._mark_down(exc)
                    self._spill(batch[i:])
                    return False
                log.exception("incident rejected; kept in %s", self._rejected_path())
                counters.incr("recording.rejected")
                self._append(self._rejected_path(), [result])
        return True

    def _write(self, batch: Sequence[ScanResult]) -> None:
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

    # ---- the spill file --------------------------------------------------------------------------

    def _rejected_path(self) -> Path:
        return self.spill_path.with_name("incident-rejected.jsonl")

    @contextmanager
    def _spill_lock(self) -> Iterator[None]:
        with open(self.spill_path.with_name(SPILL_NAME + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _spill(self, results: Sequence[ScanResult]) -> None:
        try:
            self._append(self.spill_path, results)
        except OSError as exc:  # disk full, permissions: keep them in memory and try again later
            with self._pending_lock:
                self._pending += len(results)  # the caller's _done() must not count these as handled
            self._overflow.extend(results)
            counters.incr("recording.spill-errors")
            now = time.monotonic()
            if now - self._last_spill_error > 60:
                self._last_spill_error = now
                log.error(
                    "cannot write the spill file %s: %s; %d results held in memory",
                    self.spill_path,
                    exc.strerror or exc,
                    len(self._overflow),
                )
            if self._stop.is_set():
                time.sleep(0.5)
            return
        counters.incr("recording.spilled", len(results))

    def _append(self, path: Path, results: Sequence[ScanResult]) -> None:
        lines = "".join(
            json.dumps(result_to_json(r), separators=(",", ":"), default=str) + "\n" for r in results
        )
        with self._spill_lock():
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, lines.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def _replay_files(self) -> list[Path]:
        return sorted(self.spill_path.parent.glob(SPILL_NAME + ".replay-*[0-9]"))

    def _spill_pending(self) -> bool:
        return self.spill_path.exists() or bool(self._replay_files())

    def _replay(self) -> bool:
        """Claim the spill file and write it to the store in batches (dedup applies as usual).

        True when everything pending was written; False when the store failed (the rest stays on disk).
        """
        with self._spill_lock():
            if self.spill_path.exists():
                claimed = self.spill_path.with_name(f"{SPILL_NAME}.replay-{os.getpid()}-{time.time_ns()}")
                os.replace(self.spill_path, claimed)
        return all(self._replay_file(path) for path in self._replay_files())

    def _replay_file(self, path: Path) -> bool:
        progress = path.with_name(path.name + ".done")
        with open(path, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process may be replaying it
            except BlockingIOError:
                return True
            done = int(progress.read_text() or 0) if progress.exists() else 0
            lineno = 0
            batch: list[ScanResult] = []
            for raw in fh:
                lineno += 1
                if lineno <= done:
                    continue
                try:
                    batch.append(result_from_json(json.loads(raw)))
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable spilled result skipped", path, lineno)
                    counters.incr("recording.spill-corrupt")
                if len(batch) >= self.batch_size:
                    if not self._replay_batch(batch, progress, lineno):
                        return False
                    batch = []
            if not self._replay_batch(batch, progress, lineno):
                return False
        path.unlink()
        progress.unlink(missing_ok=True)
        log.info("replayed spilled incidents from %s", path.name)
        return True

    def _replay_batch(self, batch: list[ScanResult], progress: Path, lineno: int) -> bool:
        if batch:
            if not self._write_or_spill_replayed(batch):
                return False
            counters.incr("recording.replayed", len(batch))
        tmp = progress.with_name(progress.name + ".tmp")
        tmp.write_text(str(lineno))
        os.replace(tmp, progress)
        return True

    def _write_or_spill_replayed(self, batch: list[ScanResult]) -> bool:
        """Write replayed results; a poison result goes to the rejected file, a store fault stops replay."""
        try:
            self._write(batch)
            return True
        except Exception as exc:  # noqa: BLE001 - same isolation as for live batches
            if store_down(exc):
                self._mark_down(exc)
                return False
        for result in batch:
            try:
                self._write([result])
            except Exception as exc:  # noqa: BLE001
                if store_down(exc):
                    self._mark_down(exc)
                    return False
                log.exception("spilled incident rejected; kept in %s", self._rejected_path())
                counters.incr("recording.rejected")
                self._append(self._rejected_path(), [result])
        return True

    @staticmethod
    def _make_engine(url: str, busy_timeout: float | None) -> Engine:
        kwargs: dict[str, Any] = {}
        backend = make_url(url).get_backend_name()
        if backend == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 10}
        engine = make_engine(url, **kwargs)
        if backend == "sqlite" and busy_timeout is not None:
            ms = int(busy_timeout * 1000)

            def _busy(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.execute(f"PRAGMA busy_timeout={ms}")

            event.listen(engine, "connect", _busy)
        return engine


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<invalid url>"


# ---- (de)serialising results for the spill file --------------------------------------------------


def result_to_json(result: ScanResult) -> dict[str, Any]:
    """Plain JSON-able form of a scan result (snapshot as base64)."""
    ctx = result.context
    return {
        "v": 1,
        "context": {**{k: getattr(ctx, k) for k in FlowContext.__slots__}, "groups": list(ctx.groups)},
        "findings": [
            {
                "source": f.source,
                "text": f.text,
                "label": f.label,
                "hits": [{k: getattr(h, k) for k in Hit.__slots__} for h in f.hits],
            }
            for f in result.findings
        ],
        "stats": {"bytes_scanned": result.stats.bytes_scanned, "skipped": list(result.stats.skipped)},
        "snapshot": base64.b64encode(result.snapshot).decode() if result.snapshot is not None else None,
        "snapshot_type": result.snapshot_type,
        "evidence": result.evidence,
    }


def result_from_json(data: dict[str, Any]) -> ScanResult:
    ctx = dict(data["context"])
    ctx["groups"] = tuple(ctx.get("groups") or ())
    findings = tuple(
        TextFinding(
            source=f["source"],
            text=f["text"],
            label=f.get("label", ""),
            hits=tuple(
                Hit(**{**h, "steps": tuple(h.get("steps", ())), "rules": tuple(h.get("rules", ()))})
                for h in f["hits"]
            ),
        )
        for f in data["findings"]
    )
    stats = data.get("stats") or {}
    snapshot = data.get("snapshot")
    return ScanResult(
        context=FlowContext(**ctx),
        findings=findings,
        stats=ScanStats(bytes_scanned=stats.get("bytes_scanned", 0), skipped=tuple(stats.get("skipped", ()))),
        snapshot=base64.b64decode(snapshot) if snapshot is not None else None,
        snapshot_type=data.get("snapshot_type"),
        evidence=dict(data.get("evidence") or {}),
    )
