"""What a device sends never reaches the proxy's log, even in mitmproxy's own error messages."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netmon_proxy import logscrub


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ("1.2.3.4:5: Bad HTTP request line: b'GET http://www.bing.com/search?q=secret HTTP/1.1 x'", "secret"),
        ('peer: Bad HTTP request line: b"G\\x00T http://a/?q=secret"', "secret"),
        ("error establishing server connection to http://a.example/page?token=secret", "secret"),
    ],
)
def test_scrub(message: str, leak: str) -> None:
    assert leak not in logscrub.scrub(message)
    assert "not logged" in logscrub.scrub(message)


def test_records_from_mitmproxy_are_scrubbed_before_formatting(caplog: pytest.LogCaptureFixture) -> None:
    logscrub.install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("mitmproxy.proxy.server").info(
            "Bad HTTP request line: %r", b"GET /?q=secret HTTP/9"
        )
        logging.getLogger("netmon.test").info("own message with ?q=kept")
    assert "secret" not in caplog.text
    assert "?q=kept" in caplog.text  # netmon's own records are left alone (they never log content)


@pytest.mark.e2e
def test_a_malformed_request_line_does_not_reach_the_log(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "netmon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netmon", "run", "--port", str(port), "--state-dir", str(tmp_path / "var"),
             "--confdir", str(tmp_path / "conf")],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                conn.settimeout(10)  # the first answer may come slowly on a loaded machine
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.2)
        for line in (
            b"GET http://www.bing.com/search?q=secretterm HTTP/1.1 x",
            b"G\x00T http://a/?q=secretterm",
        ):
            with conn:
                conn.sendall(line + b"\r\nHost: www.bing.com\r\n\r\n")
                assert conn.recv(100).startswith(b"HTTP/1.1 400")
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.close()
        time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert "Bad HTTP request line" in text, "the error itself is still logged"
    assert "secretterm" not in text, "the search terms a device sent reached the log"
