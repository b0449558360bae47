"""The zero-configuration trial end to end: ``NETMON_ALERT_TO=dsl@school netmon run`` (a real mitmdump),
a real client fetching a page with a severity 5 phrase, a real SMTP server receiving the alert; then an
SMTP outage across a proxy restart: every alert arrives exactly once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Proxy, start_proxy
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
    return {**server.env(), "NETMON_ALERT_TO": "dsl@school"}


def start(tmp: Path, upstream: Upstream, server: SmtpServer) -> Proxy:
    """``netmon run`` as a school starts it, with the SMTP settings and NETMON_ALERT_TO in its environment."""
    return start_proxy(tmp, upstream, env=proxy_env(server))


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
    marks = re.findall(r"<mark>(.*?)</mark>", mail.part("html"))
    assert any("kill" in m.lower() for m in marks), mail.part("html")
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
