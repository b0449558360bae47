"""End to end through a real mitmdump: URL-list, UT1 and image hits, blocking per group, no image on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from netmon.lists.imagehashing import ImageHashes, hash_image
from tests.lists.images import bomb_png, encode, picture, resized_copy
from tests.lists.test_ut1 import SAMPLES, _first_line, needs_samples

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("lists_script.py")
ROUTE = REPO / "tests" / "e2e" / "route_to_loopback.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
HOSTS = ["www.casino.example", "img.test", "news.test", "www.google.com", "ok.casino.example"]
PAGE = b"<!doctype html><html><body><p>Slots and roulette tonight</p></body></html>"


class Upstream:
    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        self.files = files
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                upstream.seen.append((self.headers.get("Host", ""), self.path, dict(self.headers)))
                body, ctype = upstream.files.get(
                    self.path.split("?", 1)[0], (PAGE, "text/html; charset=utf-8")
                )
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Dump:
    port: int
    proc: subprocess.Popen[bytes]
    results_path: Path
    log_path: Path

    def client(self, groups: str | None = None) -> httpx.Client:
        headers = {"X-Test-Groups": groups} if groups else {}
        return httpx.Client(proxy=f"http://127.0.0.1:{self.port}", headers=headers, timeout=15)

    def results(self, predicate=lambda rows: True, timeout: float = 15.0) -> list[dict]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while True:
            if self.results_path.exists():
                rows = [json.loads(x) for x in self.results_path.read_text().splitlines() if x.strip()]
                if predicate(rows):
                    return rows
            if time.monotonic() >= deadline:
                return rows
            time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("lists-e2e")
    known = picture(31)
    known_bytes = encode(known, "JPEG", quality=90)
    hashes = hash_image(known_bytes)
    assert isinstance(hashes, ImageHashes)
    copy_bytes = resized_copy(known, 0.6, 50)
    other_bytes = encode(picture(32), "JPEG")
    (tmp / "hashes.csv").write_text(
        "type,hash,category,severity,source\n"
        f"md5,{hashes.md5},csam,5,IWF test\nphash,{hashes.phash},csam,5,IWF test\n"
    )
    (tmp / "urls.csv").write_text(
        "type,value,category,severity,source\n"
        "domain,casino.example,gambling,2,local\n"
        "url,news.test/attack.html,terrorism,5,CTIRU\n"
    )
    ut1_file = ""
    ut1_host = ""
    if (SAMPLES / "gambling" / "domains").is_file():
        from netmon.lists.ut1 import import_ut1

        import_ut1(SAMPLES, tmp / "ut1.sqlite", categories=["gambling", "adult"])
        ut1_file = str(tmp / "ut1.sqlite")
        ut1_host = "www." + _first_line(SAMPLES / "gambling" / "domains")
    (tmp / "filtering.yaml").write_text(
        "groups:\n  year7: {categories: {gambling: block}, safe_search: true}\n  staff: {}\n"
        "allow:\n  - {domain: ok.casino.example, reason: 'maths project on probability'}\n"
        f"ut1: {ut1_file or 'off'}\n"
    )
    upstream = Upstream(
        {
            "/known.jpg": (known_bytes, "image/jpeg"),
            "/copy": (copy_bytes, "application/octet-stream"),
            "/other.jpg": (other_bytes, "image/jpeg"),
            "/bomb.png": (bomb_png(), "image/png"),
        }
    )
    routes = {h: upstream.port for h in [*HOSTS, *([ut1_host] if ut1_host else [])]}
    port = _free_port()
    results = tmp / "results.jsonl"
    log_path = tmp / "mitmdump.log"
    state = tmp / "state"
    env = {
        **os.environ,
        "NETMON_TEST_RESULTS": str(results),
        "NETMON_TEST_ROUTES": json.dumps(routes),
        "NETMON_STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
    }
    args = [
        str(MITMDUMP),
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={tmp / 'conf'}",
        "-s",
        str(ROUTE),
        "-s",
        str(SCRIPT),
        "--set",
        f"netmon_filtering={tmp / 'filtering.yaml'}",
        "--set",
        f"netmon_url_lists={tmp / 'urls.csv'}",
        "--set",
        f"netmon_hash_lists={tmp / 'hashes.csv'}",
    ]
    started = time.time()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    from tests.e2e.conftest import wait_for_port

    try:
        wait_for_port(port, proc=proc)
    except (RuntimeError, TimeoutError):
        proc.kill()
        raise RuntimeError(log_path.read_text(errors="replace")) from None
    dump = Dump(port, proc, results, log_path)
    yield {
        "dump": dump,
        "upstream": upstream,
        "tmp": tmp,
        "known": known_bytes,
        "copy": copy_bytes,
        "ut1_host": ut1_host,
        "started": started,
        "hashes": hashes,
    }
    proc.terminate()
    proc.wait(timeout=30)
    upstream.close()


def _rows(setup: dict[str, object], url_part: str, timeout: float = 15.0) -> list[dict]:
    """Results whose URL contains ``url_part`` (waits up to ``timeout`` for the first; 0: no wait)."""
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    found = dump.results(lambda rows: any(url_part in r["context"]["url"] for r in rows), timeout)
    return [r for r in found if url_part in r["context"]["url"]]


def test_blocking_group_gets_block_page(setup: dict[str, object]) -> None:
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    with dump.client("year7") as client:
        response = client.get("http://www.casino.example/slots?round=1")
    assert response.status_code == 403
    assert "blocked" in response.text and "gambling" in response.text and "Reference" in response.text
    (row,) = _rows(setup, "/slots?round=1")
    assert row["evidence"]["blocked"] is True and row["findings"][0]["source"] == "url-list"
    assert row["findings"][0]["hits"][0]["category"] == "gambling"
    assert row["evidence"]["block_reference"] in response.text


def test_monitor_only_group_gets_page_and_incident(setup: dict[str, object]) -> None:
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    with dump.client("staff") as client:
        response = client.get("http://www.casino.example/slots?round=2")
    assert response.status_code == 200 and response.content == PAGE
    (row,) = _rows(setup, "/slots?round=2")
    assert row["evidence"]["blocked"] is False and row["context"]["groups"] == ["staff"]


def test_url_list_exact_url_and_allow_list(setup: dict[str, object]) -> None:
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    with dump.client("year7") as client:
        assert client.get("http://news.test/attack.html").status_code == 200  # terrorism: monitor-only here
        assert client.get("http://ok.casino.example/odds").status_code == 200  # allow-listed: always wins
    (row,) = _rows(setup, "news.test/attack.html")
    hit = row["findings"][0]["hits"][0]
    assert (hit["category"], hit["severity"], hit["line"]) == ("terrorism", 5, 3)
    time.sleep(0.5)
    assert not _rows(setup, "ok.casino.example", 0)


@needs_samples
def test_ut1_category_hit(setup: dict[str, object]) -> None:
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    host = setup["ut1_host"]
    with dump.client("staff") as client:
        assert client.get(f"http://{host}/").status_code == 200
    with dump.client("year7") as client:
        assert client.get(f"http://{host}/play").status_code == 403
    rows = _rows(setup, str(host))
    assert len(rows) == 2
    assert {r["findings"][0]["hits"][0]["library_file"] for r in rows} == {"ut1:gambling/domains"}


def test_safe_search_enforced_for_the_group(setup: dict[str, object]) -> None:
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    upstream: Upstream = setup["upstream"]  # type: ignore[assignment]
    with dump.client("year7") as client:
        client.get("http://www.google.com/search?q=kittens")
    with dump.client("staff") as client:
        client.get("http://www.google.com/search?q=puppies")
    paths = [p for h, p, _ in upstream.seen if h.startswith("www.google.com")]
    assert "/search?q=kittens&safe=active" in paths and "/search?q=puppies" in paths


@pytest.fixture(scope="module")
def image_rows(setup: dict[str, object]) -> dict[str, list[dict]]:
    dump: Dump = setup["dump"]  # type: ignore[assignment]
    with dump.client("staff") as client:
        for path in ("/known.jpg", "/copy", "/other.jpg", "/bomb.png"):
            assert client.get(f"http://img.test{path}").status_code == 200
    rows = {"known": _rows(setup, "img.test/known.jpg"), "copy": _rows(setup, "img.test/copy")}
    time.sleep(1.0)
    rows["other"] = _rows(setup, "other.jpg", 0) + _rows(setup, "bomb.png", 0)
    return rows


def test_images_exact_perceptual_and_skips(
    setup: dict[str, object], image_rows: dict[str, list[dict]]
) -> None:
    known, copy = image_rows["known"], image_rows["copy"]
    assert len(known) == 1 and len(copy) == 1
    assert known[0]["evidence"]["type"] == "md5" and copy[0]["evidence"]["type"] == "phash"
    hashes: ImageHashes = setup["hashes"]  # type: ignore[assignment]
    assert known[0]["evidence"]["sha256"] == hashes.sha256
    for row in (known[0], copy[0]):
        hit = row["findings"][0]["hits"][0]
        assert (hit["phrase"], hit["severity"], hit["matched_text"]) == ("image hash match", 5, "")
        assert row["snapshot"] is None and row["findings"][0]["text"] == ""
    assert image_rows["other"] == []


def test_nothing_of_a_matched_image_on_disk(
    setup: dict[str, object], image_rows: dict[str, list[dict]]
) -> None:
    """After the image hits: no file in the test dirs, the state dir or the temp dir holds image bytes."""
    assert image_rows["known"] and image_rows["copy"]
    known: bytes = setup["known"]  # type: ignore[assignment]
    copy: bytes = setup["copy"]  # type: ignore[assignment]
    needles = [known[len(known) // 2 : len(known) // 2 + 64], copy[len(copy) // 2 : len(copy) // 2 + 64]]
    started: float = setup["started"]  # type: ignore[assignment]
    roots = [Path(setup["tmp"]), Path(tempfile.gettempdir())]  # type: ignore[arg-type]
    checked = 0
    for root in roots:
        for path in root.rglob("*"):
            try:
                if (
                    not path.is_file()
                    or path.stat().st_mtime < started - 1
                    or path.stat().st_size > 50_000_000
                ):
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            checked += 1
            assert not any(n in data for n in needles), f"image bytes found in {path}"
    assert checked > 0
