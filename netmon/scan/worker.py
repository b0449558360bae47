"""The scan worker process: ``python -m netmon.scan.worker LIBRARY [OVERLAY]``.

It compiles the library once, then reads scan jobs from stdin and writes results to stdout, one frame
each (``netmon.scan.framing``). The proxy's side is ``netmon.scan.workers.ScanWorkers``.

A job arrives as ``(id, device, priority, job)`` and is answered by ``("result", id, result)`` or
``("error", id, name)``. The proxy keeps several jobs in a worker's hands, so that the worker never
waits for the proxy's busy event loop to hand it the next one; the worker reads every job waiting in its
pipe before it starts the next scan and scans them in the order of a ``FairQueue``
(``netmon.scan.fairqueue``): what a pupil types before page bodies, devices in turn. So a search that
arrives behind a dozen pages, or behind another device's flood, waits only for the scan in progress (and
at most one job of each device whose turn comes first). Answers are written when the queue is empty or
every few milliseconds, so that the proxy wakes once for several of them.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from netmon.scan.fairqueue import BULK, FairQueue
from netmon.scan.framing import FrameReader, frame

log = logging.getLogger(__name__)

#: Bytes read from the pipe at a time (the proxy asks the kernel for pipes this large).
PIPE_SIZE = 1024 * 1024
#: Answers are held at most this long (seconds) while more jobs wait, then written together.
FLUSH_AFTER = 0.005
#: ... or once they are this large.
FLUSH_BYTES = 256 * 1024
#: Jobs read ahead of the one being scanned, at most: the proxy hands over everything at a clean stop,
#: and the rest stays in the pipe rather than in this process's memory.
READ_AHEAD = 64


class _Jobs:
    """Jobs read from the proxy's pipe, waiting in a fair queue."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.reader = FrameReader()
        self.queue: FairQueue[tuple[object, object]] = FairQueue()
        self.closed = False
        os.set_blocking(fd, False)

    def read(self, wait: bool) -> None:
        """Read whatever the pipe holds now (with ``wait``: block until something comes)."""
        if wait and not self.closed:
            select.select([self.fd], [], [])
        while not self.closed and len(self.queue) < READ_AHEAD:
            try:
                data = os.read(self.fd, PIPE_SIZE)
            except BlockingIOError:
                return
            if not data:
                self.closed = True  # the proxy closed the pipe: answer what is queued, then stop
                return
            for message in self.reader.feed(data):
                self._put(message)

    def _put(self, message: object) -> None:
        if isinstance(message, tuple) and len(message) == 4:
            job_id, device, priority, job = message
            self.queue.put((job_id, job), str(device), priority if priority in (0, 1) else BULK)
        else:  # not a job frame: answered as an error, in turn
            self.queue.put((None, message), "", BULK)


def _answer(job_id: object, job: object, matcher: Any, model: Any) -> bytes:
    from netmon.scan.job import scan_job

    try:
        return frame(("result", job_id, scan_job(job, matcher, model)))  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - one bad job must not stop the worker
        log.error("scan job failed: %s", type(exc).__name__)  # never the content
        return frame(("error", job_id, type(exc).__name__))


def serve(stdin: int, out: BinaryIO, matcher: Any, model: Any) -> int:
    """Answer jobs from ``stdin`` until the proxy closes it and every job is answered."""
    jobs = _Jobs(stdin)
    replies: list[bytes] = []
    held, since = 0, 0.0
    while True:
        jobs.read(wait=not jobs.queue and not replies)
        item = jobs.queue.take()
        if item is not None:
            replies.append(_answer(*item, matcher, model))
            held += len(replies[-1])
            since = since or time.monotonic()
        if replies and (not jobs.queue or held >= FLUSH_BYTES or time.monotonic() - since >= FLUSH_AFTER):
            try:
                out.write(b"".join(replies))
                out.flush()
            except BrokenPipeError:
                return 0  # the proxy is gone; it counts what was in flight as lost
            replies, held, since = [], 0, 0.0
        if jobs.closed and not jobs.queue and not replies:
            return 0  # the proxy closed the pipe: every job has been answered


def main(argv: list[str]) -> int:
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
    from netmon.scan.model import shipped_or_none

    model = shipped_or_none()
    out.write(frame(("ready", matcher.fingerprint)))
    out.flush()
    return serve(sys.stdin.buffer.fileno(), out, matcher, model)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
