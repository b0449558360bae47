"""The scan worker process: ``python -m netmon.scan.worker LIBRARY [OVERLAY]``.

It compiles the library once, then reads scan jobs from stdin and writes results to stdout, one frame
each (``netmon.scan.framing``), in order. The proxy's side is ``netmon.scan.workers.ScanWorkers``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from netmon.scan.framing import FrameReader, frame

log = logging.getLogger(__name__)

#: Bytes read from the pipe at a time (the proxy asks the kernel for pipes this large).
PIPE_SIZE = 1024 * 1024


def _risk_model() -> object | None:
    """The shipped risk model, or None (scanning goes on with the library alone) if it cannot load."""
    if os.environ.get("NETMON_RISK_MODEL", "on").lower() in ("off", "0", "no", "false"):
        return None
    from netmon.scan.model import RiskModel

    try:
        return RiskModel.load()
    except (OSError, ValueError, KeyError) as exc:
        log.error("risk model not loaded (%s): scanning with the library alone", type(exc).__name__)
        return None


def main(argv: list[str]) -> int:
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
    model = _risk_model()
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
                replies.append(frame(("result", scan_job(job, matcher, model))))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - one bad job must not stop the worker
                log.error("scan job failed: %s", type(exc).__name__)  # never the content
                replies.append(frame(("error", type(exc).__name__)))
        if replies:
            try:
                out.write(b"".join(replies))
                out.flush()
            except BrokenPipeError:
                return 0  # the proxy is gone; it counts what was in flight as lost


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
