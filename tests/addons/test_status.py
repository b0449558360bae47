"""StatusWriter keeps writing status.json after a failure (disk full, permissions), and says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from mitmproxy.test import taddons
from netmon_proxy import status
from netmon_proxy.settings import Settings
from netmon_proxy.status import StatusWriter

from netmon.ops import counters


async def test_status_is_written_again_after_a_failed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status, "INTERVAL", 0.05)
    writer = StatusWriter()
    real = counters.write_status
    broken = {"on": True}

    def write(path: Path, extra: dict[str, object] | None = None) -> None:
        if broken["on"]:
            raise OSError(28, "No space left on device")
        real(path, extra)

    monkeypatch.setattr(counters, "write_status", write)
    with taddons.context(Settings(), writer) as tctx:
        tctx.configure(writer, netmon_state_dir=str(tmp_path))
        writer.running()  # the first write fails: start-up goes on
        await asyncio.sleep(0.2)
        assert counters.snapshot().get("status.write-failed", 0) >= 2
        broken["on"] = False  # space freed
        for _ in range(40):
            await asyncio.sleep(0.05)
            if (tmp_path / "status.json").exists():
                break
        writer.done()
    data = json.loads((tmp_path / "status.json").read_text())
    assert data["counters"]["status.write-failed"] >= 2
