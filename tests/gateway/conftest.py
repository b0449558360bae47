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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway import netns
from tests.gateway.certs import make_site_ca
from tests.gateway.netns import Lab

PROXY_PORT = 8080
PORTAL_PORT = 8090
SITE_NAMES = [
    "news.example",
    "pinned.example",
    "bank.example",
    "www.bank.example",
    "quiet.example",
    "listed.example",
]
NO_DECRYPT = "bank.example"
PORTAL_URL = f"http://{netns.GATEWAY_PUPIL_V4}:{PORTAL_PORT}/"
PUPIL, PUPIL_PASSWORD = "jsmith", "correct horse battery"
URL_LIST = "type,value,category,severity,source\ndomain,listed.example,terrorism,5,CTIRU test entry\n"
ROSTER = (
    "username,display_name,role,year_group,groups,password\n"
    f"{PUPIL},Jo Smith,pupil,9,year9;form9b,{PUPIL_PASSWORD}\n"
)


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
        return subprocess.run(
            [sys.executable, "-m", "netmon", *args],
            capture_output=True,
            text=True,
            cwd=netns.REPO,
            timeout=60,
        )

    def incidents(self, predicate: Callable[[list[dict]], bool], timeout: float = 20) -> list[dict]:
        """Incidents as `netmon export --format jsonl` gives them, waiting until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < deadline:
            out = self.netmon("export", "--db", self.db_url, "--format", "jsonl")
            assert out.returncode == 0, out.stderr
            rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            if predicate(rows):
                return rows
            time.sleep(0.5)
        return rows

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
        lab.start_resolver({name: (netns.SERVER_V4, netns.SERVER_V6) for name in SITE_NAMES})
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
    proc = lab.spawn(
        lab.internet,
        sys.executable,
        "-m",
        "tests.gateway.internet",
        str(cert),
        str(key),
        str(requests_log),
        log=log,
    )
    lab.wait_listening(lab.internet, 443, proc, log=log)
    lab.wait_listening(lab.internet, 80, proc, log=log)
    return Internet(ca=ca, requests_log=requests_log)


def shipped_config(workdir: Path, state_dir: Path) -> Path:
    """deploy/netmon/mitm_config.yaml as installed, with this lab's directories and portal address."""
    text = (netns.REPO / "deploy" / "netmon" / "mitm_config.yaml").read_text()
    for installed, here in (
        ("/etc/netmon/policy", str(netns.REPO / "policy")),
        ("/var/lib/netmon", str(state_dir)),
        ("/opt/netmon", str(netns.REPO)),
        ("http://10.10.0.1:8090/", PORTAL_URL),
    ):
        text = text.replace(installed, here)
    values = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "/etc/netmon" not in values and "10.10.0.1" not in values
    path = workdir / "mitm_config.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def gateway(request: pytest.FixtureRequest, lab: Lab, internet: Internet) -> Gateway:
    """`netmon run --config <deploy/netmon/mitm_config.yaml>` (transparent + regular@3128) in the gateway
    namespace, as deploy/systemd/netmon-proxy.service runs it, with the school's CA made on first start
    and the internet server's private CA trusted upstream.

    A test module with ``WITH_PORTAL = True`` also gets the captive portal (`netmon portal`) on
    :data:`PORTAL_PORT` and the proxy's portal gate, with the pupils in :data:`ROSTER` imported; one with
    ``WITH_URL_LIST = True`` gets :data:`URL_LIST` through `netmon run --url-list`.
    """
    with_portal = bool(getattr(request.module, "WITH_PORTAL", False))
    workdir = lab.workdir / "gateway"
    workdir.mkdir()
    state_dir = workdir / "state"
    confdir = state_dir / "ca"
    config = shipped_config(workdir, state_dir)
    db_url = f"sqlite:///{workdir / 'netmon.db'}"
    gw = Gateway(
        lab=lab,
        workdir=workdir,
        internet=internet,
        db_url=db_url,
        state_dir=state_dir,
        confdir=confdir,
        log_path=workdir / "proxy.log",
    )
    portal_args: list[str] = [] if with_portal else ["--no-portal"]
    if with_portal:
        roster = workdir / "roster.csv"
        roster.write_text(ROSTER)
        upgraded = gw.netmon("db", "upgrade", "--db", db_url)
        assert upgraded.returncode == 0, upgraded.stderr
        imported = gw.netmon("users", "import", str(roster), "--db", db_url)
        assert imported.returncode == 0, imported.stderr
        portal_args = ["--portal", "--set", "netmon_sessions_refresh_ms=200"]
    if getattr(request.module, "WITH_URL_LIST", False):
        url_list = workdir / "urls.csv"
        url_list.write_text(URL_LIST)
        portal_args += ["--url-list", str(url_list)]
    proc = lab.spawn(
        lab.gateway,
        sys.executable,
        "-m",
        "netmon",
        "run",
        "--config",
        str(config),
        "--db",
        db_url,
        "--set",
        f"ssl_verify_upstream_trusted_ca={internet.ca}",
        "--set",
        f"netmon_no_decrypt={NO_DECRYPT}",
        *portal_args,
        log=gw.log_path,
    )
    lab.wait_listening(lab.gateway, PROXY_PORT, proc, log=gw.log_path, timeout=90)
    if with_portal:
        portal_log = workdir / "portal.log"
        portal = lab.spawn(
            lab.gateway,
            sys.executable,
            "-m",
            "netmon",
            "portal",
            "--port",
            str(PORTAL_PORT),
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the test's own namespace
            "--db",
            db_url,
            "--confdir",
            str(confdir),
            "--public-url",
            PORTAL_URL,
            log=portal_log,
        )
        lab.wait_listening(lab.gateway, PORTAL_PORT, portal, log=portal_log, timeout=60)
    return gw
