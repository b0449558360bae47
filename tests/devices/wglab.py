"""A WireGuard lab in network namespaces: homes -> (tunnel) -> gateway -> server.

    home<N> (wan0 172.16.N.2) ── hN [gateway: 172.16.N.1, lan0 192.0.2.1] ── eth0 server (192.0.2.80,
                                                                               192.0.2.53 resolver)

The gateway runs the interface from ``netmon devices gateway-config --up`` under wireguard-go, the shipped
gateway ruleset deploy/nftables/netmon.nft, which includes deploy/wireguard/netmon-wg.nft (both with their
values fitted to the lab; ``pupil_home`` makes one home's link the pupils' Wi-Fi, otherwise the pupils'
interface is absent), and a real ``mitmdump`` in transparent
mode with tests/devices/tag_device.py, which names the device behind each tunnel address in a response
header. Each home runs wireguard-go with a device's client configuration. The server answers HTTP on
:80 (naming the address it saw) and DNS on 192.0.2.53:53 (every name -> 192.0.2.80).

wireguard-go's control sockets live in /var/run/wireguard, shared by every namespace, so interface names
carry the test's pid. Teardown kills every process started here and deletes the namespaces.
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
NFT = REPO / "deploy" / "wireguard" / "netmon-wg.nft"
NFT_VARS = REPO / "deploy" / "wireguard" / "netmon-wg-vars.nft"
MAIN_NFT = REPO / "deploy" / "nftables" / "netmon.nft"
MAIN_NFT_VARS = REPO / "deploy" / "nftables" / "netmon-vars.nft"
TAGGER = Path(__file__).resolve().parent / "tag_device.py"
VENV_BIN = Path(sys.executable).parent
PREFIX = "nmwg"
SERVER_V4, RESOLVER_V4, GATEWAY_LAN_V4 = "192.0.2.80", "192.0.2.53", "192.0.2.1"
PROXY_PORT = 8080

HTTP_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"server saw {self.client_address[0]} ask for {self.path}\\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], 80), H).serve_forever()
"""

DNS_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 53))
answer = bytes([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]) + socket.inet_aton(sys.argv[2])
while True:
    q, peer = s.recvfrom(512)
    s.sendto(q[:2] + b"\\x81\\x80" + q[4:6] + b"\\x00\\x01\\x00\\x00\\x00\\x00" + q[12:] + answer, peer)
"""


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, a TUN device)"
    for tool in ("ip", "nft", "wg", "wireguard-go", "curl"):
        if shutil.which(tool) is None:
            return f"needs {tool!r} (apt-get install iproute2 nftables wireguard-tools wireguard-go curl)"
    if not Path("/dev/net/tun").exists():
        return "needs /dev/net/tun for wireguard-go"
    if not (VENV_BIN / "mitmdump").exists():
        return "needs mitmdump beside the test's Python"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"'ip netns add' does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(
    *cmd: str,
    check: bool = True,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    input: str | None = None,
):  # noqa: A002
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return result


def client_wg_config(config: str, endpoint: str) -> str:
    """A wg-quick client configuration as ``wg setconf`` takes it (no Address/DNS), endpoint replaced."""
    lines = []
    for line in config.splitlines():
        if line.startswith(("Address", "DNS")):
            continue
        if line.startswith("Endpoint"):
            line = f"Endpoint = {endpoint}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def address_of(config: str) -> str:
    match = re.search(r"^Address = ([0-9.]+)/32", config, re.M)
    assert match, config
    return match.group(1)


@dataclass
class WgLab:
    workdir: Path
    homes: int = 1
    pupil_home: int | None = None  # this home's link is the pupils' Wi-Fi (the main ruleset's PUPIL_IF)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.gateway, self.server = f"{PREFIX}{tag}-gw", f"{PREFIX}{tag}-srv"
        self.home_ns = [f"{PREFIX}{tag}-h{n}" for n in range(1, self.homes + 1)]
        self.gw_if = f"nw{tag}g"
        self.client_if = [f"nw{tag}c{n}" for n in range(1, self.homes + 1)]
        self.db_url = f"sqlite:///{self.workdir / 'netmon.db'}"
        self.env = {
            **os.environ,
            "NETMON_DB": self.db_url,
            "NETMON_STATE_DIR": str(self.workdir / "state"),
            "NETMON_WG_INTERFACE": self.gw_if,
            "NETMON_WG_ENDPOINT": "172.16.1.1:51820",
            "NETMON_WG_POOL_V4": "10.99.0.0/20",
            "NETMON_WG_DNS": RESOLVER_V4,
            "NETMON_WG_CONFIG": str(self.workdir / "wg-gateway.conf"),
            "NETMON_WG_KEY_FILE": str(self.workdir / "gateway.key"),
        }
        self.env.pop("NETMON_WG_POOL_V6", None)

    # -- building -----------------------------------------------------------------------------------------
    def create(self) -> None:
        for ns in (self.gateway, self.server, *self.home_ns):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            "lan0",
            "netns",
            self.gateway,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.server,
        )
        sh("ip", "-n", self.gateway, "addr", "add", f"{GATEWAY_LAN_V4}/24", "dev", "lan0")
        sh("ip", "-n", self.server, "addr", "add", f"{SERVER_V4}/24", "dev", "eth0")
        sh("ip", "-n", self.server, "addr", "add", f"{RESOLVER_V4}/24", "dev", "eth0")
        for ns, dev in ((self.gateway, "lan0"), (self.server, "eth0")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.server, "route", "add", "default", "via", GATEWAY_LAN_V4)
        for n, ns in enumerate(self.home_ns, start=1):
            sh(
                "ip",
                "link",
                "add",
                "wan0",
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                f"h{n}",
                "netns",
                self.gateway,
            )
            sh("ip", "-n", ns, "addr", "add", f"172.16.{n}.2/24", "dev", "wan0")
            sh("ip", "-n", self.gateway, "addr", "add", f"172.16.{n}.1/24", "dev", f"h{n}")
            sh("ip", "-n", ns, "link", "set", "wan0", "up")
            sh("ip", "-n", self.gateway, "link", "set", f"h{n}", "up")
            if n == self.pupil_home:  # the pupils' Wi-Fi: the gateway is the way out, tunnel or not
                sh("ip", "-n", ns, "route", "add", "default", "via", f"172.16.{n}.1", "metric", "500")
        self.exec(self.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def exec(self, ns: str, *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None):  # noqa: A002
        return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout, env=self.env, input=input)

    def spawn(self, ns: str, *cmd: str, log: str) -> subprocess.Popen[bytes]:
        out = open(self.workdir / log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT, env=self.env
        )
        self.procs.append(proc)
        return proc

    def netmon(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.exec(self.gateway, str(VENV_BIN / "netmon"), *args, check=check)

    def wait_interface(self, ns: str, name: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exec(ns, "wg", "show", name, "listen-port", check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not come up in {ns}")

    def start_gateway(self, proxy: str = "tagger", *netmon_args: str) -> None:
        """The gateway's interface (wireguard-go + gateway-config --up), its firewall, the proxy: a bare
        mitmdump with the tagging script (``tagger``), or the real ``netmon run`` (``netmon``, with
        ``netmon_args``)."""
        self.spawn(self.gateway, "wireguard-go", "--foreground", self.gw_if, log="wg-gateway.log")
        self.wait_interface(self.gateway, self.gw_if)
        self.netmon("devices", "gateway-config", "-o", str(self.workdir / "wg-gateway.conf"), "--up")
        self.load_firewall()
        if proxy == "netmon":
            self.spawn(
                self.gateway,
                sys.executable, "-m", "netmon", "run", "--mode", "transparent", "--listen-host", "0.0.0.0",  # noqa: S104 - the lab namespace
                "--port", str(PROXY_PORT), "--state-dir", str(self.workdir / "state"),
                "--confdir", str(self.workdir / "mitm"), *netmon_args,
                log="mitmdump.log",
            )  # fmt: skip
        else:
            self.spawn(
                self.gateway,
                str(VENV_BIN / "mitmdump"),
                "--mode", "transparent", "--listen-port", str(PROXY_PORT),
                "--set", f"confdir={self.workdir / 'mitm'}", "-s", str(TAGGER), "-q",
                log="mitmdump.log",
            )  # fmt: skip
        deadline = time.monotonic() + 60
        probe = f"import socket; socket.create_connection(('{GATEWAY_LAN_V4}', {PROXY_PORT}), 1)"
        while self.exec(self.gateway, sys.executable, "-c", probe, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "mitmdump did not start: " + (self.workdir / "mitmdump.log").read_text()[-800:]
                )
            time.sleep(0.2)

    def load_firewall(self) -> None:
        """The shipped main ruleset, which includes the tunnel's file, with the lab's values."""
        nft_dir = self.workdir / "nft"
        nft_dir.mkdir(exist_ok=True)
        shutil.copy(NFT, nft_dir / NFT.name)
        shutil.copy(MAIN_NFT, nft_dir / MAIN_NFT.name)
        pupil_if = f"h{self.pupil_home}" if self.pupil_home else "nopupils0"
        for source, changes in (
            (
                NFT_VARS,
                (
                    ('define WG_IF = "wg-netmon"', f'define WG_IF = "{self.gw_if}"'),
                    ("define WG_PROXY_PORT = 8080", f"define WG_PROXY_PORT = {PROXY_PORT}"),
                    ("define WG_RESOLVER_V4 = 10.10.0.1", f"define WG_RESOLVER_V4 = {RESOLVER_V4}"),
                    ("define WG_POOL_V4 = 10.99.0.0/20", "define WG_POOL_V4 = 10.99.0.0/20"),
                ),
            ),
            (
                MAIN_NFT_VARS,
                (
                    ('define PUPIL_IF = "wlan0"', f'define PUPIL_IF = "{pupil_if}"'),
                    ("define PROXY_PORT = 8080", f"define PROXY_PORT = {PROXY_PORT}"),
                ),
            ),
        ):
            text = source.read_text()
            for shipped, here in changes:
                assert shipped in text, f"{source} no longer has {shipped!r}"
                text = text.replace(shipped, here)
            (nft_dir / source.name).write_text(text)
        self.exec(self.gateway, "nft", "-I", str(nft_dir), "-f", str(nft_dir / MAIN_NFT.name))

    def start_server(self) -> None:
        self.spawn(self.server, sys.executable, "-c", HTTP_SERVER, SERVER_V4, log="http.log")
        self.spawn(self.server, sys.executable, "-c", DNS_SERVER, RESOLVER_V4, SERVER_V4, log="dns.log")

    def start_client(self, n: int, config: str) -> None:
        """Home ``n`` brings up its tunnel with ``config`` (every route into it, like AllowedIPs 0/0)."""
        ns, name = self.home_ns[n - 1], self.client_if[n - 1]
        self.stop_client(n)
        self.spawn(ns, "wireguard-go", "--foreground", name, log=f"wg-home{n}.log")
        self.wait_interface(ns, name)
        path = self.workdir / f"client{n}.conf"
        path.write_text(client_wg_config(config, f"172.16.{n}.1:51820"))
        self.exec(ns, "wg", "setconf", name, str(path))
        self.exec(ns, "ip", "addr", "add", f"{address_of(config)}/32", "dev", name)
        self.exec(ns, "ip", "link", "set", name, "up")
        self.exec(ns, "ip", "route", "add", "default", "dev", name)

    def stop_client(self, n: int) -> None:
        ns, name = self.home_ns[n - 1], self.client_if[n - 1]
        if self.exec(ns, "ip", "link", "show", name, check=False).returncode == 0:
            self.exec(ns, "ip", "link", "del", name, check=False)
            time.sleep(0.2)

    def latest_handshake(self, ns: str, name: str) -> dict[str, int]:
        out = self.exec(ns, "wg", "show", name, "latest-handshakes").stdout
        return {k: int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}

    def curl(self, n: int, url: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
        return self.exec(
            self.home_ns[n - 1],
            "curl",
            "-sS",
            "-i",
            "--max-time",
            str(timeout),
            url,
            check=False,
            timeout=timeout + 5,
        )

    def curl_async(self, n: int, *urls: str, timeout: float = 60) -> subprocess.Popen[str]:
        cmd = ["ip", "netns", "exec", self.home_ns[n - 1], "curl", "-sS", "--max-time", str(timeout), *urls]
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )

    # -- teardown -----------------------------------------------------------------------------------------
    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for ns in (self.gateway, self.server, *self.home_ns):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name in (self.gw_if, *self.client_if):
            Path("/var/run/wireguard", f"{name}.sock").unlink(missing_ok=True)
