"""Doctor checks of the gateway's system: IP forwarding, the nftables rules, the proxy and the portal
listening."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from netmon.config.gateway import read_env_file as read_env_file
from netmon.ops import counters
from netmon.ops.doctor.base import (
    FAIL,
    OK,
    STATUS_STALE_SECONDS,
    WARN,
    Check,
    Settings,
)


def _read_sysctl(root: Path, name: str) -> str | None:
    try:
        return (root / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def check_forwarding(s: Settings) -> Check:
    fix = "install deploy/sysctl/99-netmon.conf as /etc/sysctl.d/99-netmon.conf and run 'sysctl --system'"
    values = {
        name: _read_sysctl(s.sysctl_root, name)
        for name in (
            "net.ipv4.ip_forward",
            "net.ipv6.conf.all.forwarding",
            "net.ipv4.conf.all.send_redirects",
        )
    }
    if values["net.ipv4.ip_forward"] != "1":
        return Check(
            "forwarding",
            FAIL,
            "IPv4 forwarding is off: pupils' devices cannot reach the internet through the gateway",
            fix,
        )
    if values["net.ipv4.conf.all.send_redirects"] not in ("0", None):
        return Check(
            "forwarding",
            FAIL,
            "ICMP redirects are on: devices may be told to route around the gateway (and the proxy)",
            fix,
        )
    if values["net.ipv6.conf.all.forwarding"] != "1":
        return Check(
            "forwarding",
            WARN,
            "IPv4 forwarding on, IPv6 forwarding off (IPv6 is not routed: no "
            "bypass, but dual-stack devices fall back to IPv4)",
            fix,
        )
    return Check("forwarding", OK, "IPv4 and IPv6 forwarding on, ICMP redirects off")


def nft_ruleset(table: str = "netmon") -> tuple[str | None, str]:
    """(text of ``nft list table inet <table>``, error)."""
    if shutil.which("nft") is None:
        return None, "the nft command is missing (apt-get install nftables)"
    result = subprocess.run(
        ["nft", "list", "table", "inet", table], capture_output=True, text=True, timeout=10
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return None, lines[0] if lines else f"nft exited with {result.returncode}"
    return result.stdout, ""


def _redirect_ports(text: str) -> set[int]:
    """The proxy ports TCP 80/443 is redirected to: one port, or the proxy workers' map."""
    single = re.findall(r"tcp dport \{ 80, 443 \}.*redirect to :(\d+)", text)
    if single:
        return {int(port) for port in single}
    if not re.search(r"tcp dport \{ 80, 443 \}.*redirect to :\s*jhash .*map @proxy_workers", text):
        return set()
    workers = re.search(r"map proxy_workers \{.*?elements = \{([^}]*)\}", text, flags=re.S)
    return {int(port) for port in re.findall(r":\s*(\d+)", workers.group(1))} if workers else set()


def check_rules(s: Settings, ruleset: Callable[[], tuple[str | None, str]] = nft_ruleset) -> Check:
    fix_load = "systemctl enable --now netmon-firewall (loads /etc/netmon/netmon.nft; see deploy/README.md)"
    text, error = ruleset()
    if text is None:
        if "Operation not permitted" in error or os.geteuid() != 0:
            return Check(
                "rules", WARN, f"cannot read the firewall rules ({error})", "run netmon doctor as root"
            )
        return Check("rules", FAIL, f"the netmon nftables table is not loaded ({error})", fix_load)
    problems: list[str] = []
    if s.interface:
        if not Path(f"/sys/class/net/{s.interface}").exists() and s.sysctl_root == Path("/proc/sys"):
            problems.append(f"the pupil interface {s.interface!r} does not exist on this box")
        if f'iifname != "{s.interface}"' not in text:
            found = re.findall(r'iifname != "([^"]+)"', text)
            problems.append(
                f"the rules are for interface {sorted(set(found))} but the pupils' interface is "
                f"{s.interface!r}"
            )
    else:
        problems.append(
            "the pupils' interface is unknown (set PUPIL_IF in /etc/netmon/netmon-vars.nft or "
            "NETMON_PUPIL_IF)"
        )
    ports = _redirect_ports(text)
    if not ports:
        problems.append("no redirect of TCP 80/443 to the proxy")
    elif s.proxy_port not in ports:
        shown = ", ".join(str(p) for p in sorted(ports))
        problems.append(f"web traffic is redirected to port {shown} but the proxy listens on {s.proxy_port}")
    if not re.search(r"udp dport 443 .*reject", text):
        problems.append("UDP 443 (QUIC) is not rejected: browsers could use HTTP/3 and bypass inspection")
    if problems:
        return Check(
            "rules",
            FAIL,
            "; ".join(problems),
            "edit /etc/netmon/netmon-vars.nft (PUPIL_IF, PROXY_PORT), then systemctl reload netmon-firewall",
        )
    hits = re.search(r"counter packets (\d+) bytes \d+ redirect", text)
    quic = re.search(r"udp dport 443 counter packets (\d+) bytes \d+ reject", text)
    seen = f", {hits.group(1)} connections redirected so far" if hits else ""
    seen += f", {quic.group(1)} QUIC packets refused" if quic else ""
    return Check(
        "rules",
        OK,
        f"netmon table loaded for {s.interface}: TCP 80/443 -> :{s.proxy_port}, UDP 443 rejected{seen}",
    )


def _listening(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when something accepts TCP connections on host:port, else the error."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def check_proxy(s: Settings) -> Check:
    error = _listening(s.proxy_host, s.proxy_port)
    if error:
        return Check(
            "proxy",
            FAIL,
            f"nothing listens on {s.proxy_host}:{s.proxy_port} ({error})",
            "systemctl status netmon-proxy; journalctl -u netmon-proxy -e",
        )
    status = counters.read_status(s.state_dir / "status.json")
    if status is None:
        return Check(
            "proxy",
            WARN,
            f"listening on {s.proxy_port}, but {s.state_dir / 'status.json'} is missing",
            "check netmon_state_dir in the config and the service user's permissions",
        )
    age = time.time() - float(status.get("updated", 0))  # type: ignore[arg-type]
    if status.get("stopped") or age > STATUS_STALE_SECONDS:
        return Check(
            "proxy",
            WARN,
            f"listening on {s.proxy_port}, but its status is {age:.0f} s old "
            "(another program on that port, or the proxy is stuck)",
            "systemctl restart netmon-proxy",
        )
    modes = ", ".join(status.get("mode") or [])  # type: ignore[arg-type]
    return Check("proxy", OK, f"listening on {s.proxy_port} (pid {status.get('pid')}, mode {modes})")


def check_portal(s: Settings) -> Check:
    """The portal answers on loopback or on the address devices use (netmon_portal_url's host): a
    portal that listens only on the pupil-side address is fine."""
    hosts = list(dict.fromkeys(h for h in (s.portal_host, s.portal_url_host) if h))
    errors = []
    for host in hosts:
        error = _listening(host, s.portal_port)
        if error is None:
            return Check("portal", OK, f"listening on {host}:{s.portal_port}")
        errors.append(f"{host}:{s.portal_port} ({error})")
    return Check(
        "portal",
        FAIL,
        "the captive portal does not answer on " + " or ".join(errors),
        "systemctl status netmon-portal; journalctl -u netmon-portal -e",
    )
