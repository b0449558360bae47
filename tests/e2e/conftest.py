"""End-to-end fixtures: a real `netmon run` (mitmdump) process, real upstream servers, real clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.upstream import Upstream, start_upstream

REPO = Path(__file__).resolve().parents[2]
NETMON = [sys.executable, "-m", "netmon"]
ROUTE_SCRIPT = Path(__file__).with_name("route_to_loopback.py")


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proxy:
    port: int
    db_url: str
    state_dir: Path
    confdir: Path
    proc: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def client(self, **kwargs: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        return httpx.Client(proxy=self.url, verify=context, timeout=15, **kwargs)  # type: ignore[arg-type]

    def export(self, *args: str) -> list[dict]:
        out = subprocess.run(
            [*NETMON, "export", "--db", self.db_url, "--format", "jsonl", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def incident_count(self) -> int:
        """Rows in the store right now (a cheap poll; assertions read `netmon export`)."""
        path = self.db_url.removeprefix("sqlite:///")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                return int(
                    conn.execute("SELECT count(*) + coalesce(sum(count), 0) FROM incidents").fetchone()[0]
                )
        except sqlite3.Error:
            return 0

    def wait_incidents(self, predicate, timeout: float = 20.0) -> list[dict]:  # type: ignore[no-untyped-def]
        """Poll until ``predicate(netmon export rows)`` holds (re-exporting only when the store changed)."""
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        seen = -1
        while time.monotonic() < deadline:
            count = self.incident_count()
            if count != seen:
                seen = count
                rows = self.export()
                if predicate(rows):
                    return rows
            time.sleep(0.2)
        return self.export()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_proxy(
    tmp: Path, upstream: Upstream | None, *extra: str, env: dict[str, str] | None = None
) -> Proxy:
    port = free_tcp_port()
    state = tmp / "state"
    confdir = tmp / "conf"
    db_url = f"sqlite:///{tmp / 'netmon.db'}"
    args = [
        *NETMON,
        "run",
        "--port",
        str(port),
        "--db",
        db_url,
        "--state-dir",
        str(state),
        "--confdir",
        str(confdir),
        *extra,
    ]
    proc_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if upstream is not None:
        args += ["-s", str(ROUTE_SCRIPT), "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca.ca_path}"]
        proc_env["NETMON_TEST_ROUTES"] = json.dumps(upstream.routes())
    log_path = tmp / "netmon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=proc_env)
    try:
        wait_for_port(port, proc=proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"netmon did not start:\n{log_path.read_text(errors='replace')}") from None
    return Proxy(port, db_url, state, confdir, proc, log_path)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = start_proxy(tmp_path_factory.mktemp("netmon"), upstream)
    yield running
    running.stop()
