"""Process-wide counters of work and counted skips (never content), for `netmon status` and `doctor`.

Every part increments named counters (``counters.incr("scan.skipped.body-cap")``); the proxy writes a
snapshot to ``<state dir>/status.json`` periodically, which the CLI reads.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_started = time.time()


def incr(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset() -> None:
    """For tests only."""
    with _lock:
        _counts.clear()


def write_status(path: Path, extra: dict[str, object] | None = None) -> None:
    """Atomically write the counters (and ``extra``) as JSON to ``path``."""
    data: dict[str, object] = {
        "pid": os.getpid(),
        "started": _started,
        "updated": time.time(),
        "counters": snapshot(),
    }
    if extra:
        data.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
