"""Scan worker processes, driven from the proxy's event loop without threads.

Each worker is ``python -m netmon.scan.worker LIBRARY [OVERLAY]`` (``netmon.scan.worker``): it compiles
the library once, then reads scan jobs from stdin and writes results to stdout, one frame each
(``netmon.scan.framing``), in order.

``ScanWorkers`` is the proxy's side. Everything it does runs on the event loop and never waits: a job is
pickled and queued; jobs are written to a non-blocking pipe (what the pipe cannot take yet is buffered and
written when it drains), all those of one loop iteration in one ``os.writev``, while a worker has fewer
than ``MAX_IN_HAND`` jobs (and ``IN_HAND_BYTES``) in hand, and results are read when the loop says the
pipe is readable. Several jobs in hand keep the worker busy however long the proxy's loop takes to read
its answers (with two, on a busy proxy, the worker idled three quarters of the time and half the pages
were skipped); the worker itself scans them in fair order (``netmon.scan.worker``), so a search never
waits behind the pages in its pipe. There is no thread, and so no hand-over of the GIL per page: an
earlier design on ``ProcessPoolExecutor`` spent about a millisecond of the proxy's CPU per page in its
feeder and manager threads, a quarter of what mitmproxy itself spends.

A pupil cannot flood it: jobs wait in a ``FairQueue`` (``netmon.scan.fairqueue``), what a pupil types
(searches, chat prompts, form posts, WebSocket messages) before page bodies, and devices served in turn,
so a device's flood delays only its own jobs; the worker orders the jobs in its hands the same way. A
job's own cost is bounded by its size, not by its number of hits (the hit cap is applied while
matching) and by a CPU budget (``ScanJob.cpu_budget``); so another device's search waits at most for
the job being scanned plus one job of each busy device. Measured (tests/netmon/test_scan_flood.py,
shared 2-core machine, shipped library): a 2 KB gzip form post inflating to 2 MB of one phrase costs a worker ~0.2 s CPU (7.85 s and ~850 MB before the
cap was applied while matching); a second device's search submitted behind 20 of them is answered in
~0.4 s (the test's bound: 3 s); a worker holds about 125 MB once the library, grammar and risk model
are loaded and peaks at about 200 MB through twenty floods (2026-12-04), under ``WORKER_RSS_CEILING``
(256 MB).

Fail open, never silently: a full queue is a refused job (the caller counts the skip); a worker that dies
has its in-flight jobs counted as lost and is replaced; a broken job is an error frame, counted. On a
library reload new workers start and take new jobs; the old ones finish theirs and exit. ``close``
drains every queued and in-flight job before returning, so a clean stop records everything that was seen.

Why one module: every part of it reads and changes the same per-worker state (jobs in hand, the outbox,
the unwritten bytes, the reader) on the one event loop; split, that state would be shared across modules.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmon.scan.fairqueue import FairQueue, job_device, job_priority, job_size
from netmon.scan.framing import FrameReader, frame, frame_parts, writev

__all__ = [
    "DEPTH",
    "IN_HAND_BYTES",
    "MAX_IN_HAND",
    "WORKER_RSS_CEILING",
    "FrameReader",
    "ScanWorkers",
    "frame",
    "frame_parts",
]

log = logging.getLogger(__name__)

#: Ask the kernel for pipes this large, so that a whole page usually goes in one write.
PIPE_SIZE = 1024 * 1024
#: Most respawns of crashed workers in ``RESPAWN_WINDOW`` seconds before netmon stops respawning.
MAX_RESPAWNS = 5
RESPAWN_WINDOW = 60.0
#: Jobs a worker is always given when it has fewer in hand (one being scanned, one waiting)...
DEPTH = 2
#: ... and at most this many, while the raw bytes of those in hand are under ``IN_HAND_BYTES``: the rest
#: wait in the proxy's fair queue. The worker orders those in hand fairly too (``netmon.scan.worker``).
MAX_IN_HAND = 32
IN_HAND_BYTES = 4 * 1024 * 1024
#: Resident memory a scan worker stays under, whatever one job holds (see the module documentation).
WORKER_RSS_CEILING = 256 * 1024 * 1024

_Queued = tuple[object, str, int, object]  # job, device, priority, tag


# ---------------------------------------------------------------------------------------------------
# The proxy's side


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    stdin: int
    stdout: int
    reader: FrameReader = field(default_factory=FrameReader)
    pending: bytearray = field(default_factory=bytearray)  # written when the pipe drains
    outbox: list[bytes | memoryview] = field(default_factory=list)  # frames of this loop iteration
    outbox_size: int = 0
    sizes: dict[int, tuple[int, object]] = field(default_factory=dict)  # job id -> (bytes, tag) in hand
    inflight_bytes: int = 0  # the bytes of ``sizes``, kept as it changes
    ready: bool = False
    writing: bool = False  # a writer callback is registered for ``stdin``
    retiring: bool = False  # takes no new job; stdin is closed once ``pending`` is written
    gone: bool = False
    unwatched: bool = False  # the reader callback is removed


def _set_pipe_size(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default size works, in more writes


class ScanWorkers:
    """Worker processes fed from the event loop. Create, ``start()`` on the loop, ``submit`` jobs.

    ``on_result(result, tag)`` gets each ScanResult with the tag its job was submitted with;
    ``on_error(kind)`` gets ``"job"`` for a job the worker
    could not scan and ``"lost"`` for each job lost with a dead worker. Both run on the loop.
    """

    def __init__(
        self,
        library_dir: Path,
        overlay: Path | None,
        on_result: Callable[[Any, Any], None],
        on_error: Callable[[str], None],
        workers: int = 1,
        max_jobs: int = 512,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.library_dir, self.overlay = Path(library_dir), overlay
        self.on_result, self.on_error = on_result, on_error
        self.count, self.max_jobs, self.max_bytes = workers, max_jobs, max_bytes
        self.loop: asyncio.AbstractEventLoop | None = None
        self.current: list[_Worker] = []
        self.retired: list[_Worker] = []
        self._respawns: list[float] = []
        self._queue: FairQueue[_Queued] = FairQueue()
        self._queued_bytes = 0
        self._ids = 0
        self._flushing = False  # a flush of the workers' outboxes is scheduled on the loop

    # -- lifecycle (all on the loop's thread) ---------------------------------------------------------
    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.current = [self._spawn() for _ in range(self.count)]

    def reload(self, library_dir: Path, overlay: Path | None) -> None:
        """Start workers with the (changed) library; the old ones finish their jobs and exit.
        Safe to call from any thread."""
        if self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._reload, Path(library_dir), overlay)

    def _reload(self, library_dir: Path, overlay: Path | None) -> None:
        self.library_dir, self.overlay = library_dir, overlay
        old, self.current = self.current, [self._spawn() for _ in range(self.count)]
        for worker in old:
            self._retire(worker)
        log.info("scan workers restarted with the reloaded library")
        self._dispatch()

    @property
    def inflight(self) -> int:
        """Jobs submitted and not answered yet (queued, or in a worker's hands)."""
        return len(self._queue) + sum(len(w.sizes) for w in (*self.current, *self.retired))

    @property
    def inflight_bytes(self) -> int:
        return self._queued_bytes + sum(w.inflight_bytes for w in (*self.current, *self.retired))

    def submit(self, job: object, tag: object = None, *, device: str | None = None) -> bool:
        """Queue ``job``; its answer reaches ``on_result(result, tag)``. ``device``: whose job it is, for
        fair queueing (default: the job's client address or MAC). False (nothing queued) when no worker
        is running or the queue is full: the caller counts the skip. Never blocks."""
        if not any(not w.gone for w in self.current):
            return False
        size = job_size(job)
        if self.inflight >= self.max_jobs or self.inflight_bytes + size > self.max_bytes:
            return False
        device = job_device(job) if device is None else device
        priority = job_priority(job)
        self._queue.put((job, device, priority, tag), device, priority)
        self._queued_bytes += size
        self._dispatch()
        return True

    def _dispatch(self, depth: int | None = None) -> None:
        """Hand queued jobs to the least busy live workers: to one with fewer than ``DEPTH`` in hand, or
        fewer than ``MAX_IN_HAND`` (and under ``IN_HAND_BYTES``); ``depth``: any number up to that.
        They are written together when the loop comes round (``_flush``)."""
        live = [w for w in self.current if not w.gone]
        while self._queue and live:
            worker = min(live, key=lambda w: len(w.sizes))
            n = len(worker.sizes)
            if depth is not None:
                if n >= depth:
                    break
            elif n >= MAX_IN_HAND or (n >= DEPTH and worker.inflight_bytes >= IN_HAND_BYTES):
                break
            item = self._queue.take()
            assert item is not None
            job, device, priority, tag = item
            self._ids += 1
            parts, size = frame_parts((self._ids, device, priority, job))
            self._queued_bytes -= job_size(job)
            worker.inflight_bytes += size
            worker.sizes[self._ids] = (size, tag)
            worker.outbox += parts
            worker.outbox_size += size
        if depth is not None or self.loop is None or self.loop.is_closed():
            self._flush()
        elif not self._flushing and any(w.outbox for w in live):
            self._flushing = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write every worker's outbox: one ``os.writev`` (one wake-up of the worker) per loop iteration."""
        self._flushing = False
        for worker in (*self.current, *self.retired):
            if worker.outbox and not worker.gone:
                parts, size = worker.outbox, worker.outbox_size
                worker.outbox, worker.outbox_size = [], 0
                self._write(worker, parts, size)

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs and wait (at most ``timeout`` seconds, blocking) until every in-flight job
        has been answered and handed to ``on_result``; then the workers exit. For a clean stop.

        Writing the jobs still buffered and reading the answers go on together (``select``): a worker
        blocked on writing answers must never wait for a proxy blocked on writing jobs."""
        self._dispatch(depth=sys.maxsize)  # everything still queued goes to a worker now, written now
        self._lose_queued()
        workers = [w for w in (*self.current, *self.retired) if not w.gone]
        self.current, self.retired = [], []
        for worker in workers:
            self._unwatch(worker)
            worker.retiring = True
            if not worker.pending:
                self._close_fd(worker, "stdin")
        deadline = time.monotonic() + timeout
        while live := [w for w in workers if not w.gone]:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("scan workers did not finish in %.0f s: stopped", timeout)
                for worker in live:
                    worker.proc.kill()
                    self._gone(worker)
                break
            sending = [w for w in live if w.pending]
            readable, writable, _ = select.select(
                [w.stdout for w in live], [w.stdin for w in sending], [], left
            )
            for worker in sending:
                if worker.stdin in writable:
                    self._send_pending(worker)
            for worker in live:
                if worker.stdout in readable:
                    self._read(worker)
        for worker in workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    # -- internals ----------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        argv = [sys.executable, "-m", "netmon.scan.worker", str(self.library_dir)]
        if self.overlay is not None:
            argv.append(str(self.overlay))
        # the worker is the installed netmon, run by the proxy's own interpreter
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin.fileno(), proc.stdout.fileno()
        _set_pipe_size(stdin)
        _set_pipe_size(stdout)  # answers carry text and snapshots: a small pipe would stall the worker
        os.set_blocking(stdin, False)
        os.set_blocking(stdout, False)
        worker = _Worker(proc, stdin, stdout)
        assert self.loop is not None
        self.loop.add_reader(stdout, self._read, worker)
        return worker

    def _write(self, worker: _Worker, parts: list[bytes | memoryview], size: int) -> None:
        """Write frames' pieces as they are (no joined copy); what the pipe cannot take now waits."""
        if worker.pending:
            for part in parts:
                worker.pending += part
            return
        try:
            sent = writev(worker.stdin, parts)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the worker died; its reader sees the end of the stream and counts the loss
        if sent < size:
            for part in parts:
                n = len(part) if isinstance(part, bytes) else part.nbytes
                if sent < n:
                    worker.pending += memoryview(part)[sent:]
                sent = max(0, sent - n)
            assert self.loop is not None
            self.loop.add_writer(worker.stdin, self._drain, worker)
            worker.writing = True

    def _drain(self, worker: _Worker) -> None:
        self._send_pending(worker)
        if not worker.pending and worker.writing:
            assert self.loop is not None
            self.loop.remove_writer(worker.stdin)
            worker.writing = False
            if worker.retiring:
                self._close_fd(worker, "stdin")

    def _send_pending(self, worker: _Worker) -> None:
        try:
            sent = os.write(worker.stdin, worker.pending)
        except BlockingIOError:
            return
        except OSError:
            sent = len(worker.pending)  # dead: the reader counts the loss
        del worker.pending[:sent]
        if not worker.pending and worker.retiring and not worker.writing:
            self._close_fd(worker, "stdin")

    def _retire(self, worker: _Worker) -> None:
        worker.retiring = True
        self.retired.append(worker)
        if worker.outbox:
            parts, size = worker.outbox, worker.outbox_size
            worker.outbox, worker.outbox_size = [], 0
            self._write(worker, parts, size)
        if not worker.pending:
            self._close_fd(worker, "stdin")  # the worker answers what it has, then exits

    def _read(self, worker: _Worker) -> None:
        chunks = []
        for _ in range(8):  # what is there now (a few MB at most), so the worker can go on writing
            try:
                chunk = os.read(worker.stdout, PIPE_SIZE)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                if not chunks:
                    self._gone(worker)
                    return
                break  # the end of the stream is seen on the next call, after these answers
            chunks.append(chunk)
        if not chunks:
            return
        data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
        try:
            messages = list(worker.reader.feed(data))
        except Exception as exc:  # noqa: BLE001 - a corrupt stream: replace the worker
            log.error("scan worker stream unreadable (%s): restarting it", type(exc).__name__)
            worker.proc.kill()
            self._gone(worker)
            return
        for message in messages:
            self._handle(worker, message)

    def _handle(self, worker: _Worker, message: object) -> None:
        kind = message[0] if isinstance(message, tuple) and message else None
        if kind == "ready":
            worker.ready = True
            return
        job_id = message[1] if kind in ("result", "error") and len(message) > 2 else None  # type: ignore[arg-type]
        size, tag = worker.sizes.pop(job_id, (0, None))  # type: ignore[arg-type]
        worker.inflight_bytes -= size
        if kind == "result":
            self._call(self.on_result, message[2], tag)  # type: ignore[index]
        else:
            self._call(self.on_error, "job")
        self._dispatch()

    @staticmethod
    def _call(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a fault after scanning must not stop the reader
            log.exception("scan result handler failed")

    def _gone(self, worker: _Worker) -> None:
        """The worker's stream ended: count its unanswered jobs as lost; replace it unless it was
        retiring (after a reload, or at a stop)."""
        if worker.gone:
            return
        worker.gone = True
        self._unwatch(worker)
        self._close_fd(worker, "stdin")
        self._close_fd(worker, "stdout")
        lost = len(worker.sizes)
        worker.sizes.clear()
        worker.inflight_bytes = 0
        worker.pending.clear()
        worker.outbox.clear()
        worker.outbox_size = 0
        for _ in range(lost):
            self._call(self.on_error, "lost")
        code = worker.proc.poll()
        if worker.retiring:
            if worker in self.retired:
                self.retired.remove(worker)
            if lost:
                log.error("retiring scan worker exited (code %s); %d job(s) lost", code, lost)
            elif code is None and self.loop is not None:
                self.loop.call_later(1.0, worker.proc.poll)  # reap it once it has exited
            return
        self.current.remove(worker)
        log.error("scan worker exited (code %s); %d job(s) lost", code, lost)
        now = time.monotonic()
        self._respawns = [t for t in self._respawns if now - t < RESPAWN_WINDOW]
        if len(self._respawns) >= MAX_RESPAWNS:
            log.error("scan workers keep dying: not restarting; pages are skipped (counted)")
            if not any(not w.gone for w in self.current):
                self._lose_queued()
            return
        self._respawns.append(now)
        self.current.append(self._spawn())
        self._dispatch()

    def _lose_queued(self) -> None:
        """No worker will take the queued jobs: count each as lost."""
        if any(not w.gone for w in self.current):
            return
        lost = self._queue.drain()
        self._queued_bytes = 0
        for _ in lost:
            self._call(self.on_error, "lost")

    def _unwatch(self, worker: _Worker) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        if not worker.unwatched:
            self.loop.remove_reader(worker.stdout)
            worker.unwatched = True
        if worker.writing:
            self.loop.remove_writer(worker.stdin)
            worker.writing = False

    @staticmethod
    def _close_fd(worker: _Worker, name: str) -> None:
        stream = getattr(worker.proc, name)
        if stream is not None and not stream.closed:
            try:
                stream.close()
            except OSError:
                pass


if __name__ == "__main__":  # the worker's old name, kept for a running proxy that spawns it so
    from netmon.scan.worker import main

    sys.exit(main(sys.argv[1:]))
