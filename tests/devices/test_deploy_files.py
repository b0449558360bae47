"""deploy/wireguard and the unit: load with the real tools, alone and included from the main ruleset."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.devices import wglab

DEPLOY = wglab.REPO / "deploy"
UNIT = DEPLOY / "systemd" / "netmon-wireguard.service"


def _in_fresh_namespace(*cmd: str) -> str:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")
    ns = f"{wglab.PREFIX}{os.getpid()}-nftcheck"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        for _ in range(2):  # loading twice replaces the table (idempotent reload)
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True, text=True)
        return subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "list", "ruleset"], check=True, capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_tunnel_ruleset_loads_alone() -> None:
    listed = _in_fresh_namespace("nft", "-I", str(wglab.NFT.parent), "-f", str(wglab.NFT))
    assert listed.count("table inet netmon_wg") == 1
    assert 'iifname != "wg-netmon"' in listed and "redirect to :8080" in listed
    assert "dnat ip to 10.10.0.1" in listed and "udp dport 443" in listed
    assert " drop" not in listed


def test_tunnel_ruleset_loads_from_the_main_ruleset_with_one_include_line(tmp_path: Path) -> None:
    for source in (*(DEPLOY / "nftables").glob("*.nft"), *(DEPLOY / "wireguard").glob("*.nft")):
        shutil.copy(source, tmp_path / source.name)
    main = tmp_path / "netmon.nft"
    main.write_text(main.read_text() + '\ninclude "netmon-wg.nft"\n')
    listed = _in_fresh_namespace("nft", "-I", str(tmp_path), "-f", str(main))
    assert listed.count("table inet netmon ") == 1 and listed.count("table inet netmon_wg") == 1


def test_unit_verifies() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze")
    out = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True)
    problems = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if line.strip() and "/opt/netmon/.venv/bin/netmon" not in line  # not installed on a test machine
    ]
    assert not problems, problems
    text = UNIT.read_text()
    assert "wireguard-go --foreground wg-netmon" in text
    assert "netmon devices gateway-config -o /etc/wireguard/wg-netmon.conf --apply --up" in text


def test_namespace_tests_skip_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in (wglab.unavailable_reason() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "wireguard-go" else real_which(name))
    assert "needs 'wireguard-go'" in (wglab.unavailable_reason() or "")
