"""A trust in network namespaces: one PostgreSQL in its own namespace, and one namespace per school
gateway joined to it by a veth pair ("the trust's network"), whose link a test can cut and restore.

    school-a gw  (eth0 10.89.1.2) ── veth ── (a0 10.89.1.1)  trust db namespace: PostgreSQL
    school-b gw  (eth0 10.89.2.2) ── veth ── (b0 10.89.2.1)  listening on 10.89.1.1 and 10.89.2.1

PostgreSQL is a private instance (initdb + pg_ctl as the postgres user, in a temporary directory) that
listens on the two veth addresses inside its namespace, and on a Unix socket in its directory for the
test's own checks. Each gateway namespace runs a real `netmon run`, a small upstream web server on its
loopback, and its clients (curl). Everything lives in the namespaces the test creates; teardown kills
their processes and deletes them.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.gateway.netns import _pid_alive

REPO = Path(__file__).resolve().parents[2]
ROUTE_SCRIPT = REPO / "tests" / "e2e" / "route_to_loopback.py"
PREFIX = "nmtr"
_NAME = re.compile(rf"^{PREFIX}(\d+)-")
PG_PORT = 5432

UPSTREAM = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"<!doctype html><html><body><p>Search results: nothing to show.</p></body></html>"

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "curl", "su"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command"
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        return "needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin)"
    return None


def sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _kill_all_in(ns: str) -> None:
    for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def sweep_stale() -> None:
    """Namespaces left by an earlier run whose process is gone."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_all_in(name)
            sh("ip", "netns", "del", name, check=False)


def _lines(path: Path) -> int:
    """Lines in ``path``; 0 once it is gone (a replay renames and then deletes the files it claims,
    so a file listed a moment ago may be gone when it is read)."""
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


@dataclass
class Gateway:
    site: str
    ns: str
    address: str  # the gateway's end of its link to the trust
    db_side: str  # the trust's end (PostgreSQL listens on it)
    link: str  # the interface in the db namespace: cut it to cut this school off
    workdir: Path
    proxy_port: int = 8080
    upstream_port: int = 8000
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def log_path(self) -> Path:
        return self.workdir / "netmon.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def db_url(self, database: str) -> str:
        return f"postgresql+psycopg://netmon@{self.db_side}:{PG_PORT}/{database}"

    def spilled(self) -> int:
        """Results waiting in this gateway's spill files (the live file and claimed replay files)."""
        files = [
            self.state_dir / "incident-spill.jsonl",
            *self.state_dir.glob("incident-spill.jsonl.replay-*[0-9]"),
        ]
        return sum(_lines(p) for p in files)

    def get(self, url: str, timeout: float = 20) -> tuple[int, str]:
        """A client in this school: curl through the school's proxy; (HTTP status, body)."""
        out = sh(
            "ip", "netns", "exec", self.ns, "curl", "-s", "-m", str(timeout), "-x",
            f"http://127.0.0.1:{self.proxy_port}", "-w", "\n%{http_code}", url,
            check=False, timeout=timeout + 10,
        )  # fmt: skip
        body, _, code = out.stdout.rpartition("\n")
        return int(code or 0), body


@dataclass
class TrustLab:
    prefix: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-")
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="netmon-trust-")))
    gateways: list[Gateway] = field(default_factory=list)
    pg_bin: Path = field(
        default_factory=lambda: Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]).parent
    )

    @property
    def db_ns(self) -> str:
        return f"{self.prefix}db"

    @property
    def pg_dir(self) -> Path:
        return self.root / "pg"

    def local_url(self, database: str) -> str:
        """The test's own way in: PostgreSQL's Unix socket (not through any school's link)."""
        return f"postgresql+psycopg://netmon@/{database}?host={self.pg_dir}&port={PG_PORT}"

    # -- building -----------------------------------------------------------------------------------
    def create(self, sites: list[str]) -> None:
        sweep_stale()
        sh("ip", "netns", "add", self.db_ns)
        sh("ip", "-n", self.db_ns, "link", "set", "lo", "up")
        for i, site in enumerate(sites, start=1):
            ns = f"{self.prefix}gw{i}"
            gw = Gateway(site, ns, f"10.89.{i}.2", f"10.89.{i}.1", f"trust{i}", self.root / site)
            gw.workdir.mkdir(parents=True)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh(
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                gw.link,
                "netns",
                self.db_ns,
            )
            sh("ip", "-n", ns, "addr", "add", f"{gw.address}/24", "dev", "eth0")
            sh("ip", "-n", self.db_ns, "addr", "add", f"{gw.db_side}/24", "dev", gw.link)
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", self.db_ns, "link", "set", gw.link, "up")
            self.gateways.append(gw)

    def _as_postgres(self, command: str, *, ns: bool = False) -> None:
        argv = ["su", "postgres", "-c", command]
        if ns:
            argv = ["ip", "netns", "exec", self.db_ns, *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start_postgres(self) -> None:
        self.pg_dir.mkdir()
        shutil.chown(self.root, "postgres")
        shutil.chown(self.pg_dir, "postgres")
        self._as_postgres(f"{self.pg_bin}/initdb -D {self.pg_dir}/data -U netmon --auth=trust")
        with open(self.pg_dir / "data" / "pg_hba.conf", "a") as hba:
            hba.write("host all netmon 10.89.0.0/16 trust\n")
        listen = ",".join(g.db_side for g in self.gateways)
        # Short keepalives and an idle-in-transaction limit: a backend whose gateway vanished mid-batch
        # lets go of its locks in seconds (what docs/trust.md advises for a trust's server).
        options = (
            f"-p {PG_PORT} -k {self.pg_dir} -c listen_addresses={listen} -c tcp_keepalives_idle=5 "
            "-c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
            "-c idle_in_transaction_session_timeout=10s"
        )
        self._as_postgres(
            f"{self.pg_bin}/pg_ctl -D {self.pg_dir}/data -l {self.pg_dir}/log -w -o '{options}' start",
            ns=True,
        )
        subprocess.run(
            [
                "psql",
                f"host={self.pg_dir} port={PG_PORT} user=netmon dbname=postgres",
                "-qc",
                "CREATE DATABASE trust",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def spawn(self, gw: Gateway, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", gw.ns, "env", *(f"{k}={v}" for k, v in env.items()), *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        gw.procs.append(proc)
        return proc

    def start_gateway(self, gw: Gateway, database: str, routes: str) -> None:
        """The school's upstream web server and its real `netmon run` (NETMON_SITE = the school)."""
        script = gw.workdir / "upstream.py"
        script.write_text(UPSTREAM)
        self.spawn(gw, [sys.executable, str(script), str(gw.upstream_port)], {}, gw.workdir / "upstream.log")
        env = {
            "NETMON_SITE": gw.site,
            "NETMON_ALERT_TO": f"dsl@{gw.site}.example",  # alert rules fire: outbox rows in the same batch
            "NETMON_TEST_ROUTES": routes,
            "PYTHONUNBUFFERED": "1",
            "HOME": str(gw.workdir),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        argv = [
            sys.executable, "-m", "netmon", "run", "--port", str(gw.proxy_port), "--db", gw.db_url(database),
            "--state-dir", str(gw.state_dir), "--confdir", str(gw.workdir / "conf"), "-s", str(ROUTE_SCRIPT),
        ]  # fmt: skip
        self.spawn(gw, argv, env, gw.log_path)

    def wait_ready(self, gw: Gateway, probe_url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in gw.procs):
                raise RuntimeError(f"{gw.site}: a process exited early:\n{gw.log()}")
            if gw.get(probe_url, timeout=5)[0] == 200:
                return
            time.sleep(0.3)
        raise TimeoutError(f"{gw.site}: netmon not serving after {timeout}s:\n{gw.log()}")

    # -- the link -------------------------------------------------------------------------------------
    def cut(self, gw: Gateway) -> None:
        """The school's line to the trust goes down (its far end, in the trust's namespace)."""
        sh("ip", "-n", self.db_ns, "link", "set", gw.link, "down")

    def restore(self, gw: Gateway) -> None:
        sh("ip", "-n", self.db_ns, "link", "set", gw.link, "up")

    # -- teardown -------------------------------------------------------------------------------------
    def stop_gateway(self, gw: Gateway) -> None:
        for proc in gw.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in gw.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def remove(self) -> None:
        for gw in self.gateways:
            self.stop_gateway(gw)
        if (self.pg_dir / "data").exists():
            try:
                self._as_postgres(f"{self.pg_bin}/pg_ctl -D {self.pg_dir}/data -m immediate -w stop", ns=True)
            except subprocess.CalledProcessError:
                pass
        for ns in [*(g.ns for g in self.gateways), self.db_ns]:
            _kill_all_in(ns)
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
