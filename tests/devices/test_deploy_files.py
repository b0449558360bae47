"""deploy/wireguard and the unit: load with the real tools, alone and included by the main ruleset."""

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


def _installed(directory: Path, *, tunnel: bool = True) -> Path:
    """The rulesets as docs/install.md and docs/offsite.md install them: one directory, as shipped."""
    for source in (
        *(DEPLOY / "nftables").glob("*.nft"),
        *((DEPLOY / "wireguard").glob("*.nft") if tunnel else ()),
    ):
        shutil.copy(source, directory / source.name)
    return directory / "netmon.nft"


def test_main_ruleset_includes_the_tunnel_and_lets_pupils_reach_its_port(tmp_path: Path) -> None:
    main = _installed(tmp_path)
    listed = _in_fresh_namespace("nft", "-I", str(tmp_path), "-f", str(main))
    assert listed.count("table inet netmon {") == 1 and listed.count("table inet netmon_wg {") == 1
    wg_ports = listed.split("set wg_ports {", 1)[1].split("\n\t}", 1)[0]
    assert "elements = { 51820 }" in wg_ports
    pupil_input = listed.split("chain pupil_input {", 1)[1].split("\n\t}", 1)[0]
    accept = pupil_input.index("udp dport @wg_ports")
    assert accept < pupil_input.index("jump refuse")  # accepted before WireGuard's refusal
    pupil_forward = listed.split("chain pupil_forward {", 1)[1].split("\n\t}", 1)[0]
    assert "wg_ports" not in pupil_forward  # WireGuard to anywhere else stays refused
    assert 'iifname != { "lo", "wg-netmon" } ip saddr 10.99.0.0/20' in listed  # forged tunnel addresses


def test_main_ruleset_loads_without_the_tunnel_file_and_refuses_wireguard(tmp_path: Path) -> None:
    main = _installed(tmp_path, tunnel=False)
    listed = _in_fresh_namespace("nft", "-I", str(tmp_path), "-f", str(main))
    assert "netmon_wg" not in listed
    assert "elements" not in listed.split("set wg_ports {", 1)[1].split("\n\t}", 1)[0]


@pytest.mark.parametrize("name", ["netmon.nft", "netmon-wg.nft"])
def test_nft_check_of_each_installed_ruleset(tmp_path: Path, name: str) -> None:
    """`nft -c` (parse and check against the kernel, change nothing), as installed side by side."""
    _installed(tmp_path)
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nft")
    ns = f"{wglab.PREFIX}{os.getpid()}-nftc"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        cmd = ["ip", "netns", "exec", ns, "nft", "-c", "-I", str(tmp_path), "-f", str(tmp_path / name)]
        check = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert check.returncode == 0, check.stderr


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
    # fails closed: no tunnel while its firewall (loaded by netmon-firewall.service) is missing
    assert "ExecStartPre=/usr/sbin/nft list table inet netmon_wg" in text


def test_namespace_tests_skip_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in (wglab.unavailable_reason() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "wireguard-go" else real_which(name))
    assert "needs 'wireguard-go'" in (wglab.unavailable_reason() or "")
