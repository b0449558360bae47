"""The real parts for browser tests: the store, the portal service, mitmdump and 'the internet'."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.upstream import Upstream, start_upstream
from tests.portal.ldap_server import LdapServer

REPO = Path(__file__).resolve().parents[2]
NETMON = [sys.executable, "-m", "netmon"]
MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))
ROUTES = REPO / "tests" / "e2e" / "route_to_loopback.py"
ECHO = Path(__file__).with_name("echo_identity.py")
GATE_ONLY = Path(__file__).with_name("gate_entry.py")
FULL_CHAIN = REPO / "addons" / "entry.py"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: not answering:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    root: Path
    db_url: str
    upstream: Upstream
    portal_port: int
    proxy_port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}/"

    @property
    def proxy(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    @property
    def aup_dir(self) -> Path:
        return self.root / "aup"

    @property
    def confdir(self) -> Path:
        return self.root / "conf"

    def netmon(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*NETMON, *args, "--db", self.db_url], capture_output=True, text=True, cwd=REPO, timeout=60
        )

    def sign_everyone_out(self) -> None:
        self.netmon("sessions", "end", "127.0.0.1")
        time.sleep(0.8)  # two snapshot refreshes

    def client(self) -> httpx.Client:
        # a new connection per request: the 6th keep-alive request to tests/e2e/upstream.py through mitmdump
        # stalls for seconds even without netmon's addons (seen with a bare mitmdump and the route script)
        return httpx.Client(
            proxy=f"http://{self.proxy}",
            timeout=10,
            verify=False,  # noqa: S501 - only ever talks to the test's own proxy
            headers={"Connection": "close"},
        )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        try:
            self.upstream.close()
        except AttributeError:  # tests/e2e/upstream.py: the WebSocket server has no server_close()
            pass


def start_stack(root: Path, roster: Path, ldap: LdapServer | None, entry: Path) -> Stack:
    db_url = f"sqlite:///{root / 'netmon.db'}"
    upstream = start_upstream(root / "upstream")
    stack = Stack(root, db_url, upstream, free_port(), free_port())
    try:
        subprocess.run([*NETMON, "db", "upgrade", "--db", db_url], check=True, cwd=REPO, capture_output=True)
        subprocess.run(
            [*NETMON, "users", "import", str(roster), "--db", db_url],
            check=True,
            cwd=REPO,
            capture_output=True,
        )
        shutil.copytree(REPO / "policy" / "aup", stack.aup_dir)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NETMON_STATE_DIR": str(root / "state")}
        portal_args = [
            *NETMON,
            "portal",
            "--host",
            "127.0.0.1",
            "--port",
            str(stack.portal_port),
            "--db",
            db_url,
            "--ca-cert",
            str(stack.confdir / "mitmproxy-ca-cert.pem"),
            "--organisation",
            "Test School",
            "--aup",
            str(stack.aup_dir),
        ]
        if ldap is not None:
            portal_args += [
                "--ldap-url",
                ldap.url,
                "--ldap-user-dn",
                ldap.user_dn,
                "--ldap-year-attribute",
                "departmentNumber",
            ]
        with (root / "portal.log").open("wb") as log:
            stack.procs.append(
                subprocess.Popen(portal_args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            )
        wait_http(f"{stack.portal_url}healthz", stack.procs[-1], root / "portal.log")
        proxy_args = [
            MITMDUMP,
            "-q",
            "-s",
            str(entry),
            "-s",
            str(ROUTES),
            "-s",
            str(ECHO),
            "--listen-host",
            "127.0.0.1",
            "-p",
            str(stack.proxy_port),
            "--set",
            f"confdir={stack.confdir}",
            "--set",
            f"netmon_db={db_url}",
            "--set",
            f"netmon_state_dir={root / 'state'}",
            "--set",
            "netmon_portal=true",
            "--set",
            f"netmon_portal_url={stack.portal_url}",
            "--set",
            "netmon_sessions_refresh_ms=300",
            "--set",
            f"ssl_verify_upstream_trusted_ca={upstream.ca.ca_path}",
            "--set",
            "flow_detail=0",
        ]
        # the browser may send the portal's own address through the proxy too
        routes = {**upstream.routes(), f"127.0.0.1:{stack.portal_port}": stack.portal_port}
        env["NETMON_TEST_ROUTES"] = json.dumps(routes)
        with (root / "proxy.log").open("wb") as log:
            stack.procs.append(
                subprocess.Popen(proxy_args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            )
        deadline = time.monotonic() + 40
        while True:
            if stack.procs[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mitmdump did not start:\n{stack.log('proxy')}")
            try:
                with stack.client() as client:
                    client.get("http://mitm.it/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
    except Exception:
        stack.close()
        raise
    return stack
