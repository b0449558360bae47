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
Replay progress is recorded after each committed batch; each result has an id from ``submit`` and
writing is idempotent by it (``batches``), so neither a crash during replay nor a commit whose
acknowledgement was lost (a link to PostgreSQL cut mid-commit) records a result twice.
``close(timeout)`` flushes everything (to the store, or to the spill file when the store is down).

Counters (``netmon.ops.counters``): ``recording.submitted``, ``.overflow``, ``.batches``, ``.new``,
``.merged``, ``.filtered``, ``.already``, ``.spilled``, ``.replayed``, ``.db-errors``, ``.store-gone``,
``.rejected``, ``.filter-errors``, ``.spill-errors``, ``.spill-corrupt``, ``.writer-errors``.

A store that disappears is caught too: the SQLite file deleted or replaced under the running writer
(checked before each batch, ``netmon.incidents.store_health.SqliteWatch``: an open connection would go
on writing into the deleted file without an error), locked past the busy timeout, or failing (disk
full, I/O error). Each is a down store: results spill, ``recording.db-errors`` (and
``recording.store-gone``) count it, and the spill file is replayed once the file is back.
The spill file itself is ``netmon.incidents.spill``.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

from netmon.config.paths import state_dir
from netmon.incidents import decisions as incidents
from netmon.incidents import spill
from netmon.incidents.batches import AfterBatch, BatchWriter, Entry
from netmon.incidents.decisions import HitFilter, new_uid
from netmon.incidents.spill import SPILL_NAME, result_from_json, result_to_json
from netmon.incidents.store_health import (
    STORE_DOWN,
    SqliteWatch,
    StoreGone,
    safe_url,
    store_down,
    writer_engine,
)
from netmon.ops import counters
from netmon.scan.findings import ScanResult
from netmon.store.db import upgrade

log = logging.getLogger(__name__)

__all__ = ["SPILL_NAME", "STORE_DOWN", "IncidentWriter", "result_from_json", "result_to_json", "store_down"]


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
        site: str | None = None,
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
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=queue_size)
        self._overflow: collections.deque[Entry] = collections.deque()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0  # submitted but neither committed nor spilled yet
        self._pending_lock = threading.Lock()
        self._down = False
        self._next_retry = 0.0
        self._closed = False
        self._submit_lock = threading.Lock()
        self._last_spill_error = 0.0
        self.engine = writer_engine(url, busy_timeout, site)  # site: its audit rows' (NETMON_SITE)
        self._watch = SqliteWatch(url)
        self._batches = BatchWriter(
            self.engine, dedup_window, hit_filter, self.after_batch, capture_cap, snapshot_cap
        )
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="netmon-incident-writer", daemon=True)
        self._thread.start()

    # ---- called from the event loop (or any thread) ------------------------------------------------

    def submit(self, result: ScanResult) -> None:
        """Queue ``result`` for recording; never blocks. A full queue sends it to the spill file."""
        counters.incr("recording.submitted")
        entry = (new_uid(), result)  # the result's id: the incident's uid, and what makes replay idempotent
        with self._pending_lock:
            self._pending += 1
        with self._submit_lock:  # held for a moment only: close() flips ``_closed`` under it
            if not self._closed:
                try:
                    self._queue.put_nowait(entry)
                except queue.Full:
                    self._overflow.append(entry)  # the writer thread moves it to the spill file
                    counters.incr("recording.overflow")
                return
        self._spill([entry])  # after close(): straight to the spill file, replayed at the next start
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
        elif self._queue.empty() and spill.pending(self.spill_path):
            self._replay()
        return self._stop.is_set() and self._queue.empty() and not self._overflow

    def _take(self) -> list[Entry]:
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

    def _take_all(self) -> list[Entry]:
        items: list[Entry] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        while self._overflow:
            items.append(self._overflow.popleft())
        return items

    def _spill_overflow(self) -> None:
        items = [self._overflow.popleft() for _ in range(len(self._overflow))]
        if items:
            self._spill(items)
            self._done(len(items))

    def _done(self, n: int) -> None:
        with self._pending_lock:
            self._pending -= n
        with self._idle:
            self._idle.notify_all()

    def _recover(self) -> None:
        """(Re)connect: migrate when asked, then replay the spill file. Marks the store down on failure.

        A SQLite file that vanished under the writer is not created again here (that would hide the loss
        of everything in it, or write to a disk that is not mounted): results spill until it is back."""
        self.engine.dispose()  # never reuse a connection to a file that was deleted or replaced
        if self._watch.missing():
            self._mark_down(StoreGone(f"{self._watch.path}: the database file is gone"))
            return
        if self.migrate:
            try:
                upgrade(self.url)
            except STORE_DOWN as exc:
                self._mark_down(exc)
                return
        was_down = self._down
        self._watch.settle()
        if self._replay():
            self._down = False
            counters.problem("store", None)
            if was_down:
                log.warning("incident store %s is writable again", safe_url(self.url))

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "incident store %s cannot be written (%s); spilling to %s and retrying every %.0fs",
                safe_url(self.url),
                exc.__class__.__name__,
                self.spill_path,
                self.retry_interval,
            )
        counters.incr("recording.db-errors")
        if isinstance(exc, StoreGone):
            counters.incr("recording.store-gone")
        if not self._down:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            counters.problem(
                "store",
                f"incidents cannot be written to the store since {since} UTC ({exc.__class__.__name__}); "
                f"they wait in {self.spill_path} and are replayed when it is back",
            )
        self._down = True
        self._next_retry = time.monotonic() + self.retry_interval

    def _write_or_spill(self, batch: Sequence[Entry]) -> bool:
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

    def _write(self, batch: Sequence[Entry]) -> None:
        self._watch.check()  # an open connection would write into a deleted file without an error
        self._batches.write(batch)

    # ---- the spill file --------------------------------------------------------------------------

    def _rejected_path(self) -> Path:
        return self.spill_path.with_name(spill.REJECTED_NAME)

    def _spill(self, results: Sequence[Entry]) -> None:
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

    def _append(self, path: Path, results: Sequence[Entry]) -> None:
        spill.append(path, results, self.spill_path)

    def _replay(self) -> bool:
        """Claim the spill file and write it to the store in batches (dedup applies as usual).

        True when everything pending was written; False when the store failed (the rest stays on disk).
        """
        spill.claim(self.spill_path)
        return all(self._replay_file(path) for path in spill.replay_files(self.spill_path))

    def _replay_file(self, path: Path) -> bool:
        progress = path.with_name(path.name + ".done")
        with open(path, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process may be replaying it
            except BlockingIOError:
                return True
            done = int(progress.read_text() or 0) if progress.exists() else 0
            lineno = 0
            batch: list[Entry] = []
            for raw in fh:
                lineno += 1
                if lineno <= done:
                    continue
                try:
                    batch.append(spill.entry_from_json(json.loads(raw)))
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

    def _replay_batch(self, batch: list[Entry], progress: Path, lineno: int) -> bool:
        if batch:
            if not self._write_or_spill_replayed(batch):
                return False
            counters.incr("recording.replayed", len(batch))
        tmp = progress.with_name(progress.name + ".tmp")
        tmp.write_text(str(lineno))
        os.replace(tmp, progress)
        return True

    def _write_or_spill_replayed(self, batch: list[Entry]) -> bool:
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
