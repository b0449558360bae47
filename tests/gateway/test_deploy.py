"""deploy/ is configuration a network admin installs as it is: check it with the real tools where present
(nft, systemd-analyze, dnsmasq, netmon's own option validation) and keep it consistent with itself."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gateway import netns

DEPLOY = netns.REPO / "deploy"
GATEWAY_CONFIG = DEPLOY / "netmon" / "mitm_config.yaml"
NFT = netns.NFT_RULES


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "systemd" / name)
    return parser


def _nft_vars() -> dict[str, str]:
    from netmon.config.gateway import read_nft_vars

    return read_nft_vars(DEPLOY / "nftables" / "netmon-vars.nft")


def _gateway_options() -> dict:
    from netmon.config.gateway import read_options

    return read_options(GATEWAY_CONFIG)


def test_nftables_ruleset_loads_with_the_shipped_values(tmp_path: Path) -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    ns = f"{netns.PREFIX}{os.getpid()}x0-check"
    netns.sh("ip", "netns", "add", ns)
    try:
        cmd = ["ip", "netns", "exec", ns, "nft", "-I", str(DEPLOY / "nftables"), "-f", str(netns.NFT_RULES)]
        netns.sh(*cmd)
        netns.sh(*cmd)  # loading twice replaces the table (idempotent reload)
        listed = netns.sh("ip", "netns", "exec", ns, "nft", "list", "ruleset").stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert listed.count("table inet netmon") == 1
    assert 'iifname != "wlan0"' in listed
    assert "map @proxy_workers" in listed and "0-15 : 8080" in listed
    assert "udp dport 443" in listed and "reject" in listed  # QUIC: reject, never drop
    assert " drop" not in listed


def test_shipped_ruleset_passes_nft_check() -> None:
    """`nft -c` (parse and check against the kernel, change nothing) on the files exactly as shipped."""
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    ns = f"{netns.PREFIX}{os.getpid()}x0-nftc"
    netns.sh("ip", "netns", "add", ns)
    try:
        check = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-c", "-I", str(DEPLOY / "nftables"), "-f", str(NFT)],
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert check.returncode == 0, check.stderr


def test_ruleset_refuses_by_default_and_names_every_bypass() -> None:
    text = netns.NFT_RULES.read_text()
    for needle in (
        "udp dport 443",
        "tcp dport 853",
        "udp dport 51820",
        "udp dport 1194",
        "udp dport { 500, 4500 }",
        "tcp dport 53",
        "@doh_v4",
        "@doh_v6",
        "@school_tcp",
        "@signed_v6",
    ):
        assert needle in text, needle
    # both pupil chains end in a reject: default deny, never a silent drop of a refused service
    for chain in ("pupil_input", "pupil_forward"):
        body = text.split(f"chain {chain} {{", 1)[1].split("\n    }", 1)[0].strip().splitlines()
        assert "reject" in body[-1] and "reject" in body[-2], chain
    canary = (DEPLOY / "dnsmasq" / "netmon.conf").read_text()
    assert re.search(r"^local=/use-application-dns\.net/$", canary, re.M)


def test_ruleset_covers_ipv6_in_one_inet_table() -> None:
    text = netns.NFT_RULES.read_text()
    assert "table inet netmon {" in text  # one table for IPv4 and IPv6: no silent IPv6 bypass
    assert "ip6 daddr @portal_v6" in text
    assert "iptables" not in text


def test_proxy_port_agrees_between_firewall_config_and_pac() -> None:
    options = _gateway_options()
    assert int(_nft_vars()["PROXY_PORT"]) == options["listen_port"]
    assert "transparent" in options["mode"]
    explicit = [m for m in options["mode"] if m.startswith("regular@")]
    assert explicit, "the explicit-proxy alternative needs a regular@PORT mode"
    port = explicit[0].split("@")[1]
    for name in ("proxy.pac", "wpad.dat"):
        pac = (DEPLOY / "pac" / name).read_text()
        assert "function FindProxyForURL(url, host)" in pac
        assert re.search(rf'"PROXY [\d.]+:{port}"', pac), name


def test_gateway_config_uses_only_known_options_and_never_emudhra() -> None:
    from netmon_proxy import launch

    values = launch.read_config(GATEWAY_CONFIG)
    assert not {"emudhra", "emudhra_old"} & values.keys()
    opts = launch.option_manager()
    unknown = sorted(set(values) - set(opts.keys()))
    assert not unknown, f"{GATEWAY_CONFIG}: unknown options {unknown}"


def test_sysctl_settings_exist_in_this_kernel() -> None:
    lines = [
        line.split("=")
        for line in (DEPLOY / "sysctl" / "99-netmon.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    settings = {key.strip(): value.strip() for key, value in lines}
    assert settings["net.ipv4.ip_forward"] == "1"
    assert settings["net.ipv4.conf.all.send_redirects"] == "0"
    for key in settings:
        assert Path("/proc/sys", key.replace(".", "/")).exists(), key


@pytest.mark.parametrize("unit", ["netmon-proxy.service", "netmon-portal.service"])
def test_services_run_unprivileged_restart_and_read_secrets_from_a_file(unit: str) -> None:
    service = _unit(unit)["Service"]
    assert service["User"] == "netmon"
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/netmon/netmon.env"
    assert service["NoNewPrivileges"] == "yes"
    assert "/opt/netmon/.venv/bin/netmon" in service["ExecStart"]


def test_firewall_unit_loads_the_rules_from_etc() -> None:
    service = _unit("netmon-firewall.service")["Service"]
    assert service["ExecStart"] == "/usr/sbin/nft -I /etc/netmon -f /etc/netmon/netmon.nft"
    assert service["ExecStop"] == "/usr/sbin/nft delete table inet netmon"


def test_units_pass_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    units = sorted(
        str(p)
        for p in (DEPLOY / "systemd").glob("netmon-*.service")
        if not p.name.startswith("netmon-report")
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line and "/opt/netmon" not in line
    ]
    assert not problems, problems


def test_dnsmasq_example_has_the_captive_portal_option() -> None:
    conf = (DEPLOY / "dnsmasq" / "netmon.conf").read_text()
    option = re.search(r'^dhcp-option=114,"(https://[^"]+)"', conf, re.M)
    assert option, "RFC 8910 option 114 missing"
    path = "/" + option.group(1).split("/", 3)[3]
    assert f'"{path}"' in (netns.REPO / "captive_portal" / "app.py").read_text()  # the portal's API route
    if shutil.which("dnsmasq"):
        check = subprocess.run(
            ["dnsmasq", "--test", f"--conf-file={DEPLOY / 'dnsmasq' / 'netmon.conf'}"],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr


def test_every_deploy_file_is_in_the_install_guide() -> None:
    guide = (DEPLOY / "README.md").read_text()
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.name != "README.md":
            assert path.name in guide, f"deploy/README.md does not mention {path.relative_to(DEPLOY)}"
    for heading in ("Install", "Upgrade", "CA rotation", "Logs"):
        assert re.search(rf"^#+ .*{heading}", guide, re.M | re.I), heading


def test_namespace_tests_skip_with_a_clear_reason_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in (netns.unavailable_reason() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "nft" else "/usr/bin/" + tool)
    assert "apt-get install" in (netns.unavailable_reason() or "")
