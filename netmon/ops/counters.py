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
_problems: dict[str, str] = {}  # what is wrong now (part -> one line, never content): cleared when mended
_started = time.time()


def problem(part: str, message: str | None) -> None:
    """Say that ``part`` is failing now (``message``), or that it works again (None)."""
    with _lock:
        if message is None:
            _problems.pop(part, None)
        else:
            _problems[part] = message


def problems() -> dict[str, str]:
    with _lock:
        return dict(_problems)


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
        _problems.clear()


def write_status(path: Path, extra: dict[str, object] | None = None) -> None:
    """Atomically write the counters (and ``extra``) as JSON to ``path``."""
    data: dict[str, object] = {
        "pid": os.getpid(),
        "started": _started,
        "updated": time.time(),
        "counters": snapshot(),
        "problems": problems(),
    }
    if extra:
        data.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def status_name(worker: int = 0) -> str:
    """The status file of proxy worker ``worker`` in the state directory."""
    return "status.json" if worker == 0 else f"status.{worker}.json"


def read_statuses(state_dir: Path) -> list[dict[str, object]]:
    """Every proxy worker's status in ``state_dir``, worker 0 first (empty when none is there)."""
    files = [state_dir / "status.json", *sorted(state_dir.glob("status.*.json"), key=_worker_of)]
    return [data for data in map(read_status, files) if data is not None]


def _worker_of(path: Path) -> int:
    middle = path.name.removeprefix("status.").removesuffix(".json")
    return int(middle) if middle.isdigit() else 1 << 30


def summed(statuses: list[dict[str, object]]) -> dict[str, int]:
    """The counters of several workers added up."""
    total: dict[str, int] = {}
    for data in statuses:
        for key, value in (data.get("counters") or {}).items():  # type: ignore[union-attr]
            total[key] = total.get(key, 0) + int(value)
    return total


def read_status(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
