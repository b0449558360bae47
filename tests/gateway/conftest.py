"""Fixtures for the gateway tests: a namespace lab with the deploy/ rules, an "internet" server, and a real
`netmon run --mode transparent` in the gateway namespace.

Everything is torn down by finalizers even when a test fails: processes by their process group, then the
namespaces (which removes their interfaces and nftables rules). Skipped with a clear reason when not root
or when `ip netns` / `nft` are unavailable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway import netns
from tests.gateway.certs import make_site_ca
from tests.gateway.netns import Lab

PROXY_PORT = 8080
PORTAL_PORT = 8081
SITE_NAMES = ["news.example", "pinned.example", "bank.example", "www.bank.example", "quiet.example",
              "listed.example"]
NO_DECRYPT = "bank.example"


@pytest.fixture(scope="session")
def netns_available() -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(f"gateway namespace tests skipped: {reason}")
    netns.sweep_stale()


@dataclass
class Internet:
    ca: Path
    requests_log: Path

    def requests(self) -> list[dict]:
        if not self.requests_log.exists():
            return []
        return [json.loads(line) for line in self.requests_log.read_text().splitlines() if line.strip()]


@dataclass
class Gateway:
    lab: Lab
    workdir: Path
    internet: Internet
    db_url: str
    state_dir: Path
    confdir: Path
    log_path: Path

    @property
    def school_ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def device(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.lab.exec(self.lab.device, *cmd, check=False, timeout=timeout)

    def curl(self, url: str, *args: str, trust: str = "school") -> subprocess.CompletedProcess[str]:
        """curl from the pupil device; names resolve to the internet server; ``trust``: school|internet."""
        ca = self.school_ca if trust == "school" else self.internet.ca
        resolve: list[str] = []
        for name in SITE_NAMES:
            for port in (80, 443):
                resolve += ["--resolve", f"{name}:{port}:{netns.SERVER_V4}"]
        return self.device("curl", "-sS", "--max-time", "15", "--cacert", str(ca), *resolve, *args, url)

    def netmon(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netmon", *args], capture_output=True, text=True,
                              cwd=netns.REPO, timeout=60)

    def status(self, timeout: float = 15, want: str | None = None) -> dict:
        """The proxy's status.json (written every few seconds); wait until counter ``want`` appears."""
        path = self.state_dir / "status.json"
        deadline = time.monotonic() + timeout
        data: dict = {}
        while time.monotonic() < deadline:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if data and (want is None or want in data.get("counters", {})):
                return data
            time.sleep(0.3)
        return data

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def lab(netns_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("gateway-lab")
    lab = Lab(workdir)
    try:
        lab.create()
        lab.configure_gateway(PROXY_PORT)
        yield lab
    finally:
        lab.destroy()


@pytest.fixture(scope="module")
def internet(lab: Lab) -> Internet:
    workdir = lab.workdir / "internet"
    workdir.mkdir()
    ca, cert, key = make_site_ca(workdir, SITE_NAMES, [netns.SERVER_V4, netns.SERVER_V6])
    log = workdir / "server.log"
    requests_log = workdir / "requests.jsonl"
    proc = lab.spawn(lab.internet, sys.executable, "-m", "tests.gateway.internet", str(cert), str(key),
                     str(requests_log), log=log)
    lab.wait_listening(lab.internet, 443, proc, log=log)
    lab.wait_listening(lab.internet, 80, proc, log=log)
    return Internet(ca=ca, requests_log=requests_log)


@pytest.fixture(scope="module")
def gateway(lab: Lab, internet: Internet) -> Gateway:
    """`netmon run --mode transparent` in the gateway namespace, as deploy/systemd/netmon-proxy.service runs
    it, with the school's CA in a fresh confdir and the internet server's private CA trusted upstream."""
    workdir = lab.workdir / "gateway"
    workdir.mkdir()
    state_dir, confdir = workdir / "state", workdir / "confdir"
    db_url = f"sqlite:///{workdir / 'netmon.db'}"
    log = workdir / "proxy.log"
    proc = lab.spawn(
        lab.gateway, sys.executable, "-m", "netmon", "run", "--mode", "transparent",
        "--port", str(PROXY_PORT), "--listen-host", "", "--db", db_url, "--state-dir", str(state_dir),
        "--confdir", str(confdir),
        "--set", f"ssl_verify_upstream_trusted_ca={internet.ca}",
        "--set", f"netmon_no_decrypt={NO_DECRYPT}",
        log=log)
    lab.wait_listening(lab.gateway, PROXY_PORT, proc, log=log, timeout=90)
    return Gateway(lab=lab, workdir=workdir, internet=internet, db_url=db_url, state_dir=state_dir,
                   confdir=confdir, log_path=log)
