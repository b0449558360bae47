"""Scan worker processes, driven from the proxy's event loop without threads.

Each worker is ``python -m netmon.scan.workers LIBRARY [OVERLAY]``: it compiles the library once, then
reads scan jobs from stdin and writes results to stdout, one length-prefixed pickle frame each, in order.

``ScanWorkers`` is the proxy's side. Everything it does runs on the event loop and never waits: a job is
pickled and written to a non-blocking pipe (what the pipe cannot take yet is buffered and written when
it drains), and results are read when the loop says the pipe is readable. There is no thread, and so no
hand-over of the GIL per page: an earlier design on ``ProcessPoolExecutor`` spent about a millisecond of
the proxy's CPU per page in its feeder and manager threads, a quarter of what mitmproxy itself spends.

Fail open, never silently: a full queue is a refused job (the caller counts the skip); a worker that dies
has its in-flight jobs counted as lost and is replaced; a broken job is an error frame, counted. On a
library reload new workers start and take new jobs; the old ones finish theirs and exit. ``close``
drains every in-flight job before returning, so a clean stop records everything that was seen.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
#: A frame larger than this is a corrupt stream, not a message (jobs are capped far below).
MAX_FRAME = 256 * 1024 * 1024
#: Ask the kernel for pipes this large, so that a whole page usually goes in one write.
PIPE_SIZE = 1024 * 1024
#: Most respawns of crashed workers in ``RESPAWN_WINDOW`` seconds before netmon stops respawning.
MAX_RESPAWNS = 5
RESPAWN_WINDOW = 60.0


_COUNT = struct.Struct(">H")


def frame_parts(message: object) -> tuple[list[bytes | memoryview], int]:
    """One message as the pieces of a frame, and its length, for ``os.writev`` (no joined copy):
    4-byte big-endian length of the rest, 2-byte count of out-of-band buffers (page bodies: see
    ``findings.pickled_as_tuple``), 4-byte length of each, the pickle, then the buffers as they are."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = _COUNT.pack(len(raws)) + b"".join(_HEADER.pack(r.nbytes) for r in raws)
    size = len(head) + len(data) + sum(r.nbytes for r in raws)
    return [_HEADER.pack(size) + head, data, *raws], _HEADER.size + size


def frame(message: object) -> bytes:
    """One message as one frame (see ``frame_parts``)."""
    return b"".join(frame_parts(message)[0])


def _unframe(payload: memoryview) -> object:
    (count,) = _COUNT.unpack_from(payload, 0)
    pos = _COUNT.size + count * _HEADER.size
    if pos > len(payload):
        raise ValueError("scan worker stream corrupt (buffer table)")
    sizes = [_HEADER.unpack_from(payload, _COUNT.size + i * _HEADER.size)[0] for i in range(count)]
    end = len(payload) - sum(sizes)
    if end < pos:
        raise ValueError("scan worker stream corrupt (buffer sizes)")
    buffers, at = [], end
    for n in sizes:
        buffers.append(bytes(payload[at : at + n]))
        at += n
    return pickle.loads(payload[pos:end], buffers=buffers)  # noqa: S301 - our own workers, private pipes


class FrameReader:
    """Splits a byte stream into messages. ``feed`` returns the messages completed by ``data``."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[object]:
        self._buf += data
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > MAX_FRAME or size < _COUNT.size:
                raise ValueError(f"scan worker stream corrupt (frame of {size} bytes)")
            if len(buf) - pos - _HEADER.size < size:
                break
            start = pos + _HEADER.size
            pos = start + size
            with memoryview(buf) as view:
                message = _unframe(view[start:pos])
            yield message
        del buf[:pos]


# ---------------------------------------------------------------------------------------------------
# The worker process


def _worker_main(argv: list[str]) -> int:
    from netmon.scan.job import scan_job
    from netmon.scan.library import load_library
    from netmon.scan.matching import Matcher

    # The worker stops when the proxy closes its stdin (or dies), never on a signal sent to the whole
    # process group (Ctrl-C in a terminal, systemd's stop): that would lose the jobs still in flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print (Python's or a library's) must never corrupt the result stream
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s scan worker %(levelname)s %(message)s")
    library_dir, overlay = Path(argv[0]), (Path(argv[1]) if len(argv) > 1 and argv[1] else None)
    matcher = Matcher.compile(load_library(library_dir, overlay))
    out.write(frame(("ready", matcher.fingerprint)))
    out.flush()
    reader = FrameReader()
    stdin = sys.stdin.buffer.fileno()
    while True:
        data = os.read(stdin, PIPE_SIZE)
        if not data:
            return 0  # the proxy closed the pipe: every job has been answered
        replies = []
        for job in reader.feed(data):
            try:
                replies.append(frame(("result", scan_job(job, matcher))))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - one bad job must not stop the worker
                log.error("scan job failed: %s", type(exc).__name__)  # never the content
                replies.append(frame(("error", type(exc).__name__)))
        if replies:
            try:
                out.write(b"".join(replies))
                out.flush()
            except BrokenPipeError:
                return 0  # the proxy is gone; it counts what was in flight as lost


# ---------------------------------------------------------------------------------------------------
# The proxy's side


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    stdin: int
    stdout: int
    reader: FrameReader = field(default_factory=FrameReader)
    pending: bytearray = field(default_factory=bytearray)  # written when the pipe drains
    sizes: deque[int] = field(default_factory=deque)  # bytes of each in-flight job, in order
    tags: deque[object] = field(default_factory=deque)  # the caller's tag of each in-flight job
    inflight_bytes: int = 0  # sum(sizes), kept as it changes
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
        self._next = 0

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

    @property
    def inflight(self) -> int:
        return sum(len(w.sizes) for w in (*self.current, *self.retired))

    @property
    def inflight_bytes(self) -> int:
        return sum(w.inflight_bytes for w in (*self.current, *self.retired))

    def submit(self, job: object, tag: object = None) -> bool:
        """Queue ``job`` on the least busy worker; its answer reaches ``on_result(result, tag)``. False
        (nothing queued) when none is running or the queue is full: the caller counts the skip. Never
        blocks."""
        live = [w for w in self.current if not w.gone]
        if not live:
            return False
        parts, size = frame_parts(job)
        if self.inflight >= self.max_jobs or self.inflight_bytes + size > self.max_bytes:
            return False
        worker = min(live, key=lambda w: len(w.sizes))
        worker.inflight_bytes += size
        worker.sizes.append(size)
        worker.tags.append(tag)
        self._write(worker, parts, size)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs and wait (at most ``timeout`` seconds, blocking) until every in-flight job
        has been answered and handed to ``on_result``; then the workers exit. For a clean stop.

        Writing the jobs still buffered and reading the answers go on together (``select``): a worker
        blocked on writing answers must never wait for a proxy blocked on writing jobs."""
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
        argv = [sys.executable, "-m", "netmon.scan.workers", str(self.library_dir)]
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
        """Write a frame's pieces as they are (no joined copy); what the pipe cannot take now waits."""
        if worker.pending:
            for part in parts:
                worker.pending += part
            return
        try:
            sent = os.writev(worker.stdin, parts)
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
        tag = None
        if worker.sizes:
            worker.inflight_bytes -= worker.sizes.popleft()
            tag = worker.tags.popleft()
        if kind == "result":
            self._call(self.on_result, message[1], tag)  # type: ignore[index]
        else:
            self._call(self.on_error, "job")

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
        worker.tags.clear()
        worker.inflight_bytes = 0
        worker.pending.clear()
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
            return
        self._respawns.append(now)
        self.current.append(self._spawn())

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


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
