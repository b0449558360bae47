"""How long the proxy's event loop is held by handing a result to the incident writer, in one run:

    .venv/bin/python bench/bench_loop_stall.py            # --results N, --every MS, --repeat N

The loop thread (this script's main thread) hands results to ``IncidentWriter.submit`` one every
``--every`` ms, busy with Python work in between as a loaded proxy is, while the writer thread records
them (SQLite in a temporary directory; the results are ``bench/bench_recording.py``'s: news-style pages
of the benign-dev texts, mostly severity-1 topic words). It prints the wall time each call held the loop
thread (mean, 99th percentile, calls over 1 ms) against the baseline of the same run: a bare
``queue.Queue.put_nowait`` to a thread waiting in ``get`` with a timeout, as the writer waits. Anything in
``submit`` that releases the GIL (a system call: ``uuid.uuid4`` reads ``os.urandom``) lets the busy
writer thread take it, and the loop waits until the writer gives it back (up to the interpreter's switch
interval, 5 ms, or more). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_recording as br  # noqa: E402 - the recording bench's results

from netmon.incidents.writer import IncidentWriter  # noqa: E402
from netmon.scan.library import load_library  # noqa: E402
from netmon.scan.matching import Matcher  # noqa: E402


def paced(submit: Callable[[object], None], items: list[object], every: float) -> list[float]:
    """Wall seconds of each ``submit`` call, one call every ``every`` seconds, the thread busy between."""
    held = []
    for item in items:
        start = time.perf_counter()
        submit(item)
        held.append(time.perf_counter() - start)
        while time.perf_counter() - start < every:
            pass  # the loop's own work (Python, holding the GIL)
    return held


def baseline(items: list[object], every: float) -> list[float]:
    q: queue.Queue[object] = queue.Queue()
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            try:
                q.get(timeout=0.2)
            except queue.Empty:
                pass

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    held = paced(q.put_nowait, items, every)
    done.set()
    thread.join()
    return held


def writer(items: list[object], every: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        w = IncidentWriter(f"sqlite:///{tmp}/netmon.db", spill_dir=Path(tmp))
        w.flush(10)
        held = paced(w.submit, items, every)  # type: ignore[arg-type]
        if not w.flush(120):
            sys.exit("writer did not finish")
        w.close()
    return held


def summary(held: list[float]) -> str:
    ordered = sorted(held)
    p99 = ordered[len(ordered) * 99 // 100]
    over = sum(h > 0.001 for h in held)
    return f"mean {statistics.mean(held) * 1e3:7.3f} ms  p99 {p99 * 1e3:6.2f} ms  over 1 ms: {over:4d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=600)
    ap.add_argument("--every", type=float, default=2.0, help="ms between hand-overs")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    matcher = Matcher.compile(load_library(br.ROOT / "library"))
    items: list[object] = list(br.traffic(br.scanned(matcher, br.DATA, 98), args.results))
    every = args.every / 1000
    print(f"{len(items)} results, one every {args.every} ms; wall time the loop thread was held per call")
    for _ in range(args.repeat):
        base, held = baseline(items, every), writer(items, every)
        ratio = statistics.mean(held) / statistics.mean(base)
        print(f"  baseline: Queue.put_nowait     {summary(base)}")
        print(f"  IncidentWriter.submit          {summary(held)}   mean x{ratio:.0f} of the baseline")


if __name__ == "__main__":
    main()
