"""`netmon run --workers 2`: two proxy processes on consecutive ports, one store, one alert sender,
`netmon status` summed over both, and a clean stop of both on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import wait_for_port

pytestmark = pytest.mark.e2e
NETMON = [sys.executable, "-m", "netmon"]


def _two_free_ports() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free ports")


def test_two_workers_record_into_one_store_with_one_sender(tmp_path: Path) -> None:
    port = _two_free_ports()
    state = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETMON_")}
    log = tmp_path / "netmon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *NETMON,
                "run",
                "--workers",
                "2",
                "--port",
                str(port),
                "--state-dir",
                str(state),
                "--confdir",
                str(tmp_path / "conf"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        wait_for_port(port, 60, proc)
        wait_for_port(port + 1, 60, proc)
        for p, q in ((port, "how to kill myself"), (port + 1, "i want to self harm")):
            with httpx.Client(proxy=f"http://127.0.0.1:{p}", timeout=30) as client:
                client.get("http://www.bing.com/search", params={"q": q})
        db = f"sqlite:///{state / 'netmon.db'}"
        deadline, listing = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            listing = subprocess.run(
                [*NETMON, "incidents", "--db", db], capture_output=True, text=True
            ).stdout
            if "suicide" in listing and "self_harm" in listing:
                break
            time.sleep(0.5)
        assert "suicide" in listing and "self_harm" in listing, listing + log.read_text(errors="replace")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (state / "status.1.json").exists():
            time.sleep(0.5)
        shown = subprocess.run(
            [*NETMON, "status", "--state-dir", str(state), "--json"], capture_output=True, text=True
        )
        data = json.loads(shown.stdout)
        assert [w["listen_port"] for w in data["workers"]] == [port, port + 1]
        per_worker = [w["counters"].get("scan.done", 0) for w in data["workers"]]
        assert data["counters"].get("scan.done", 0) == sum(per_worker)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert text.count("alert sender started") == 1, "one alert sender for all workers"
    assert (
        subprocess.run(
            ["pgrep", "-f", "netmon_proxy.launch.*" + str(port + 1)], capture_output=True
        ).returncode
        != 0
    )


def test_two_workers_on_a_first_start_sign_with_one_school_ca(tmp_path: Path) -> None:
    """On an empty confdir the workers must not each make a CA: a device that installed the school's
    certificate would refuse every HTTPS connection served by the other worker."""
    import ssl

    from tests.e2e.conftest import start_proxy
    from tests.e2e.upstream import start_upstream

    (tmp_path / "upstream").mkdir()
    (tmp_path / "netmon").mkdir()
    upstream = start_upstream(tmp_path / "upstream")
    proxy = start_proxy(tmp_path / "netmon", upstream, "--workers", "2")
    try:
        wait_for_port(proxy.port + 1, 60, proxy.proc)
        assert sorted(p.name for p in proxy.confdir.glob("mitmproxy-ca*.pem")) == [
            "mitmproxy-ca-cert.pem",
            "mitmproxy-ca.pem",
        ]
        context = ssl.create_default_context(cafile=str(proxy.ca_path))  # the one a pupil installs
        for port in (proxy.port, proxy.port + 1):
            with httpx.Client(proxy=f"http://127.0.0.1:{port}", verify=context, timeout=30) as client:
                response = client.get("https://www.google.com/search", params={"q": "maths homework"})
            assert response.status_code == 200, (port, response.text[:200])
    finally:
        proxy.stop()
        upstream.close()
