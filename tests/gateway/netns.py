"""Three network namespaces joined by veth pairs: a pupil device, the gateway and an "internet" server.

    device (eth0 10.77.0.10, fd77::10) ── pupil0 [gateway 10.77.0.1, fd77::1] uplink0 ── eth0 (192.0.2.80,
    fd78::80) internet                                   (192.0.2.1, fd78::1)

The internet namespace also answers on a second address (192.0.2.81, fd78::81): "any other server". The
gateway runs dnsmasq with deploy/dnsmasq/netmon.conf (made to fit the lab) as the school's resolver, and
its own resolv.conf names it (``/etc/netns/<gateway>/resolv.conf``, which ``ip netns exec`` mounts).

Names carry a unique prefix per run (``nmgw<pid>x<n>-``) so parallel runs never collide, and a run that
died without cleaning up is swept by the next one (its pid is gone). Teardown kills every process started
in the namespaces and deletes them, which removes their interfaces and nftables rules with them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NFT_RULES = REPO / "deploy" / "nftables" / "netmon.nft"
SYSCTL_FILE = REPO / "deploy" / "sysctl" / "99-netmon.conf"
PREFIX = "nmgw"
_NAME = re.compile(rf"^{PREFIX}(\d+)x\d+-")
_counter = 0

DEVICE_V4, GATEWAY_PUPIL_V4 = "10.77.0.10", "10.77.0.1"
GATEWAY_UPLINK_V4, SERVER_V4 = "192.0.2.1", "192.0.2.80"
DEVICE_V6, GATEWAY_PUPIL_V6, GATEWAY_UPLINK_V6, SERVER_V6 = "fd77::10", "fd77::1", "fd78::1", "fd78::80"
OTHER_V4, OTHER_V6 = "192.0.2.81", "fd78::81"  # another server in the internet namespace
DNSMASQ_CONF = REPO / "deploy" / "dnsmasq" / "netmon.conf"
PUPIL_IF = "pupil0"
APPLY_SYSCTL = """
import sys
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        key, value = (part.strip() for part in line.split("=", 1))
        with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
            fh.write(value)
"""


def unavailable_reason() -> str | None:
    """Why the namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and nftables); CI runs these as root"
    for tool in ("ip", "nft", "curl"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command (apt-get install iproute2 nftables curl)"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"'ip netns add' does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sweep_stale() -> None:
    """Delete namespaces left by earlier runs whose process is gone."""
    for name in list_namespaces():
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_namespace_processes(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def _kill_namespace_processes(ns: str) -> None:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def worker_buckets(port: int, workers: int) -> str:
    """The 16 address-hash buckets shared among ``workers`` ports, as netmon-vars.nft writes them."""
    edges = [16 * i // workers for i in range(workers + 1)]
    return ", ".join(f"{edges[i]}-{edges[i + 1] - 1} : {port + i}" for i in range(workers))


@dataclass
class Lab:
    workdir: Path
    prefix: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        global _counter
        _counter += 1
        self.prefix = self.prefix or f"{PREFIX}{os.getpid()}x{_counter}-"
        self.device, self.gateway, self.internet = (f"{self.prefix}{n}" for n in ("device", "gw", "net"))

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return self.device, self.gateway, self.internet

    # -- building ----------------------------------------------------------------------------------
    def create(self) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            self.device,
            "type",
            "veth",
            "peer",
            "name",
            PUPIL_IF,
            "netns",
            self.gateway,
        )
        sh(
            "ip",
            "link",
            "add",
            "uplink0",
            "netns",
            self.gateway,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.internet,
        )
        for ns, dev, v4, v6 in (
            (self.device, "eth0", DEVICE_V4, DEVICE_V6),
            (self.gateway, PUPIL_IF, GATEWAY_PUPIL_V4, GATEWAY_PUPIL_V6),
            (self.gateway, "uplink0", GATEWAY_UPLINK_V4, GATEWAY_UPLINK_V6),
            (self.internet, "eth0", SERVER_V4, SERVER_V6),
        ):
            sh("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        for ns, v4, v6 in (
            (self.device, GATEWAY_PUPIL_V4, GATEWAY_PUPIL_V6),
            (self.internet, GATEWAY_UPLINK_V4, GATEWAY_UPLINK_V6),
        ):
            sh("ip", "-n", ns, "route", "add", "default", "via", v4)
            sh("ip", "-n", ns, "-6", "route", "add", "default", "via", v6)
        sh("ip", "-n", self.internet, "addr", "add", f"{OTHER_V4}/24", "dev", "eth0")
        # deprecated (preferred_lft 0): never picked as the source of the UDP echo server's replies
        sh(
            "ip", "-n", self.internet, "addr", "add", f"{OTHER_V6}/64", "dev", "eth0", "nodad",
            "preferred_lft", "0",
        )  # fmt: skip
        self.netns_etc.mkdir(parents=True, exist_ok=True)
        (self.netns_etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")

    @property
    def netns_etc(self) -> Path:
        """Files ``ip netns exec`` mounts over /etc in the gateway namespace (its resolv.conf)."""
        return Path("/etc/netns") / self.gateway

    def start_resolver(self, names: dict[str, tuple[str, ...]]) -> Path:
        """dnsmasq in the gateway with the shipped config fitted to the lab, answering ``names``."""
        text = DNSMASQ_CONF.read_text()
        for shipped, here in (
            ("interface=wlan0", f"interface={PUPIL_IF}"),
            ("dhcp-range=10.10.0.50,10.10.3.250,255.255.252.0,8h", "dhcp-range=10.77.0.50,10.77.0.99,12h"),
            ("10.10.0.1", GATEWAY_PUPIL_V4),
            ("server=192.0.2.53", ""),
        ):
            assert shipped in text, f"{DNSMASQ_CONF} no longer has {shipped!r}"
            text = text.replace(shipped, here)
        for name, addresses in names.items():
            text += "".join(f"\naddress=/{name}/{address}" for address in addresses)
        conf = self.workdir / "dnsmasq.conf"
        conf.write_text(text + f"\ndhcp-leasefile={self.workdir / 'dnsmasq.leases'}\n")
        log = self.workdir / "dnsmasq.log"
        proc = self.spawn(
            self.gateway,
            "dnsmasq",
            "-k",
            "--user=root",
            "--log-facility=-",
            f"--conf-file={conf}",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}",
            log=log,
        )
        deadline = time.monotonic() + 10
        while "53" not in self.exec(self.gateway, "ss", "-Hlun", "sport = :53", check=False).stdout:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        return conf

    def configure_gateway(
        self,
        proxy_port: int,
        exempt_v4: str = "127.0.0.1",
        exempt_v6: str = "::1",
        school_tcp: str = "5000",
        school_udp: str = "5000",
        workers: int = 1,
    ) -> None:
        """The deploy/ sysctl settings and nftables ruleset, with this lab's interface and port."""
        if shutil.which("sysctl"):
            self.exec(self.gateway, "sysctl", "-q", "-p", str(SYSCTL_FILE))
        else:  # no procps: write the same settings through /proc/sys inside the namespace
            self.exec(self.gateway, sys.executable, "-c", APPLY_SYSCTL, str(SYSCTL_FILE))
        vars_dir = self.workdir / "nft"
        vars_dir.mkdir(exist_ok=True)
        (vars_dir / "netmon-vars.nft").write_text(
            f'define PUPIL_IF = "{PUPIL_IF}"\ndefine PROXY_PORT = {proxy_port}\n'
            f"define PROXY_WORKER_BUCKETS = {{ {worker_buckets(proxy_port, workers)} }}\n"
            f"define PROXY_PORTS = {{ {', '.join(str(proxy_port + i) for i in range(workers))} }}\n"
            f"define EXPLICIT_PROXY_PORT = 3128\ndefine PORTAL_PORT = 8090\n"
            f"define PORTAL_V4 = {{ {exempt_v4} }}\ndefine PORTAL_V6 = {{ {exempt_v6} }}\n"
            f"define SCHOOL_TCP_PORTS = {{ {school_tcp} }}\ndefine SCHOOL_UDP_PORTS = {{ {school_udp} }}\n"
        )
        self.exec(self.gateway, "nft", "-I", str(vars_dir), "-f", str(NFT_RULES))

    # -- running -----------------------------------------------------------------------------------
    def exec(
        self, ns: str, *cmd: str, check: bool = True, timeout: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"in {ns}: {' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
        return result

    def spawn(
        self, ns: str, *cmd: str, log: Path, env: dict[str, str] | None = None, cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd,
                env=env,
            )
        self.procs.append(proc)
        return proc

    def wait_listening(
        self, ns: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 60, log: Path | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log else ""
                raise RuntimeError(
                    f"process in {ns} exited ({proc.returncode}) before listening on {port}:\n{tail}"
                )
            out = self.exec(ns, "ss", "-Hltn", f"sport = :{port}", check=False).stdout
            if out.strip():
                return
            time.sleep(0.1)
        raise TimeoutError(f"nothing listening on port {port} in {ns} after {timeout}s")

    # -- teardown ----------------------------------------------------------------------------------
    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        for ns in self.namespaces:
            if ns in list_namespaces():
                _kill_namespace_processes(ns)
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.netns_etc, ignore_errors=True)
