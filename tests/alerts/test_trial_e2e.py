"""The zero-configuration trial end to end: ``NETMON_ALERT_TO=dsl@school netmon run`` (a real mitmdump),
a real client fetching a page with a severity 5 phrase, a real SMTP server receiving the alert; then an
SMTP outage across a proxy restart: every alert arrives exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, ROUTE_SCRIPT, Proxy, free_tcp_port, start_proxy, wait_for_port
from tests.e2e.upstream import Upstream, start_upstream

from .conftest import SmtpServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.close()


def wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def proxy_env(server: SmtpServer) -> dict[str, str]:
    return {**server.env(), "NETMON_ALERT_TO": "dsl@school", "NETMON_ALERT_RETRY_MAX": "1"}


def start(tmp: Path, upstream: Upstream, server: SmtpServer) -> Proxy:
    """``netmon run`` when it starts; otherwise the same addons in a plain mitmdump (the launcher is
    not part of this test)."""
    env = proxy_env(server)
    try:
        return start_proxy(tmp, upstream, env=env)
    except RuntimeError:
        pass
    port = free_tcp_port()
    state, confdir = tmp / "state", tmp / "conf"
    db_url = f"sqlite:///{tmp / 'netmon.db'}"
    args = [
        str(Path(sys.executable).with_name("mitmdump")),
        "-q",
        "--listen-host",
        "127.0.0.1",
        "-p",
        str(port),
        "-s",
        str(REPO / "addons" / "entry.py"),
        "-s",
        str(ROUTE_SCRIPT),
        "--set",
        f"netmon_db={db_url}",
        "--set",
        f"netmon_state_dir={state}",
        "--set",
        f"confdir={confdir}",
        "--set",
        f"ssl_verify_upstream_trusted_ca={upstream.ca.ca_path}",
    ]
    proc_env = {
        **os.environ,
        **env,
        "PYTHONUNBUFFERED": "1",
        "NETMON_TEST_ROUTES": json.dumps(upstream.routes()),
        "PYTHONPATH": str(REPO),
    }
    log_path = tmp / "mitmdump.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=proc_env)
    wait_for_port(port, proc=proc)
    return Proxy(port, db_url, state, confdir, proc, log_path)


def fetch(proxy: Proxy, url: str) -> None:
    with proxy.client() as client:
        assert client.get(url).status_code == 200


def test_trial_alert_arrives(tmp_path: Path, upstream: Upstream, smtp_server: SmtpServer) -> None:
    proxy = start(tmp_path, upstream, smtp_server)
    try:
        fetch(proxy, "https://pages.test/phrase.html?trial=1")
        wait(lambda: len(smtp_server.received) >= 1)
        rows = proxy.wait_incidents(lambda rows: len(rows) >= 1)
    finally:
        proxy.stop()
    (mail,) = smtp_server.received
    assert mail.rcpt_tos == ["dsl@school"]
    assert rows[0]["uid"] in mail.part("plain")
    assert "<mark>kill myself</mark>" in mail.part("html")
    subject = str(mail.message["Subject"])
    assert rows[0]["category"] in subject and str(rows[0]["severity"]) in subject


def test_outage_across_a_proxy_restart(tmp_path: Path, upstream: Upstream, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    proxy = start(tmp_path, upstream, smtp_server)
    try:
        for i in range(3):
            fetch(proxy, f"https://pages.test/phrase.html?outage={i}")
        proxy.wait_incidents(lambda rows: len(rows) >= 3)
        time.sleep(1.5)  # the sender tries and fails
    finally:
        proxy.stop()
    assert smtp_server.received == []
    proxy = start(tmp_path, upstream, smtp_server)
    try:
        time.sleep(1.0)
        smtp_server.start()
        wait(lambda: len(smtp_server.received) >= 3)
        time.sleep(3.0)  # and nothing more
        rows = proxy.export()
    finally:
        proxy.stop()
    assert len(smtp_server.received) == 3
    uids = {r["uid"] for r in rows}
    assert {next(u for u in uids if u in m.part("plain")) for m in smtp_server.received} == uids
    assert len({m.message["Message-ID"] for m in smtp_server.received}) == 3
