"""A school edits its library overlay while netmon runs: the scan workers pick it up, and a broken
edit keeps the previous library (a real netmon process, read back through `netmon export`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Proxy, start_proxy
from tests.e2e.upstream import Upstream

pytestmark = pytest.mark.e2e

WORD = "zorblaxing"  # in no library: only the school's own entry can find it


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    (tmp_path / "overlay" / "en").mkdir(parents=True)
    return tmp_path / "overlay"


@pytest.fixture
def proxy_with_overlay(upstream: Upstream, overlay: Path, tmp_path: Path) -> Iterator[Proxy]:
    (tmp_path / "netmon").mkdir()
    running = start_proxy(tmp_path / "netmon", upstream, "--overlay", str(overlay))
    yield running
    running.stop()


def search(proxy: Proxy, words: str) -> None:
    with proxy.client() as client:
        assert client.get("https://www.google.com/search", params={"q": words}).status_code == 200


def searches_for(rows: list[dict], tag: str) -> list[dict]:
    return [r for r in rows if r["source"] == "search" and tag in r["url"]]


def wait_log(proxy: Proxy, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in proxy.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{proxy.log()}"
        time.sleep(0.2)


def test_overlay_edit_is_used_without_a_restart_and_a_broken_edit_keeps_it(
    proxy_with_overlay: Proxy, overlay: Path
) -> None:
    proxy = proxy_with_overlay
    search(proxy, f"{WORD} before")
    search(proxy, "kill myself before")  # a library phrase: proves the scan ran, and its order
    rows = proxy.wait_incidents(lambda rows: searches_for(rows, "kill+myself+before"))
    assert searches_for(rows, "kill+myself+before") and not searches_for(rows, f"{WORD}+before")

    (overlay / "en" / "local.txt").write_text(f"@category violence\n@language en\n{WORD} | 4\n")
    wait_log(proxy, "phrase library reloaded")
    search(proxy, f"{WORD} after")
    rows = proxy.wait_incidents(lambda rows: searches_for(rows, f"{WORD}+after"))
    (hit,) = searches_for(rows, f"{WORD}+after")
    assert hit["category"] == "violence" and hit["severity"] == 4 and hit["phrase"] == WORD

    (overlay / "en" / "local.txt").write_text(f"@category violence\n@language en\n{WORD} | 9\n")
    wait_log(proxy, "severity must be 1-5")
    assert "local.txt:3" in proxy.log()  # which file and line, for the admin
    search(proxy, f"{WORD} still")
    rows = proxy.wait_incidents(lambda rows: searches_for(rows, f"{WORD}+still"))
    assert searches_for(rows, f"{WORD}+still")  # the last good library is still scanning
