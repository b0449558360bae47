"""The spill file: scan results the store could not take (yet), as JSON lines, and their replay files.

``<spill_dir>/incident-spill.jsonl`` is appended to under an advisory lock (``.lock`` beside it) and
fsynced; a replay first claims it by renaming it to ``incident-spill.jsonl.replay-<pid>-<ns>``, so new
spills go to a fresh file while the claimed one is written to the store. A result the store rejects
(a bad row, not a down store) is kept in ``incident-rejected.jsonl`` for a human.

Each line is one scan result plus ``rid``, the id it was given when submitted: replaying a line the store
already holds is a no-op (``netmon.incidents.batches``). A line without ``rid`` (an older spill file)
gets a fresh one.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from netmon.incidents.decisions import new_uid
from netmon.scan.findings import FlowContext, Hit, ScanResult, ScanStats, TextFinding

SPILL_NAME = "incident-spill.jsonl"
REJECTED_NAME = "incident-rejected.jsonl"


@contextmanager
def lock(spill_path: Path) -> Iterator[None]:
    """The advisory lock every writer of the spill file (in any process) takes."""
    with open(spill_path.with_name(SPILL_NAME + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append(path: Path, entries: Sequence[tuple[str, ScanResult]], spill_path: Path) -> None:
    """Append ``entries`` (result id, result) to ``path`` (the spill file or the rejected file) and fsync.
    Raises OSError."""
    lines = "".join(
        json.dumps({**result_to_json(r), "rid": rid}, separators=(",", ":"), default=str) + "\n"
        for rid, r in entries
    )
    with lock(spill_path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def replay_files(spill_path: Path) -> list[Path]:
    """Claimed spill files not yet fully replayed (by this process or one that stopped), oldest first."""
    return sorted(spill_path.parent.glob(SPILL_NAME + ".replay-*[0-9]"))


def pending(spill_path: Path) -> bool:
    return spill_path.exists() or bool(replay_files(spill_path))


def claim(spill_path: Path) -> None:
    """Rename the spill file (if any) to a replay file of this process."""
    with lock(spill_path):
        if spill_path.exists():
            claimed = spill_path.with_name(f"{SPILL_NAME}.replay-{os.getpid()}-{time.time_ns()}")
            os.replace(spill_path, claimed)


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


def entry_from_json(data: dict[str, Any]) -> tuple[str, ScanResult]:
    """(result id, result) of a spill line; a line without an id (an older file) gets a fresh one."""
    rid = data.get("rid")
    if not isinstance(rid, str) or not 0 < len(rid) <= 32:
        rid = new_uid()
    return rid, result_from_json(data)


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
