"""The namespace lab itself: teardown leaves no namespace, rule or process behind, and a run that died
without cleaning up is swept by the next one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.gateway import netns
from tests.gateway.netns import Lab


@pytest.fixture(autouse=True)
def needs_netns() -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(f"gateway namespace tests skipped: {reason}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else ""
    return "State:\tZ" not in status


def test_teardown_after_a_failure_removes_namespaces_rules_and_processes(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="test failed"):
        try:
            lab.create()
            lab.configure_gateway(8080)
            proc = lab.spawn(lab.gateway, "sleep", "300", log=tmp_path / "sleep.log")
            # a grandchild in its own session escapes the process group: the namespace sweep kills it
            stray = lab.exec(lab.gateway, "sh", "-c", "setsid sleep 301 >/dev/null 2>&1 & echo $!")
            pids += [proc.pid, int(stray.stdout.strip())]
            assert "table inet netmon" in lab.exec(lab.gateway, "nft", "list", "tables").stdout
            raise RuntimeError("test failed")
        finally:
            lab.destroy()
    assert not [ns for ns in netns.list_namespaces() if ns.startswith(lab.prefix)]
    for pid in pids:
        for _ in range(50):
            if not _alive(pid):
                break
            subprocess.run(["sleep", "0.05"])
        assert not _alive(pid), pid
    # the rules lived only in the gateway namespace: the host's ruleset has no netmon table
    assert "netmon" not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def test_stale_namespaces_of_dead_runs_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Lab(tmp_path, prefix=f"{netns.PREFIX}{dead.pid}x1-")
    stale.create()
    try:
        netns.sweep_stale()
        assert not [ns for ns in netns.list_namespaces() if ns.startswith(stale.prefix)]
    finally:
        stale.destroy()
