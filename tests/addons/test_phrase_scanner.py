"""PhraseScanner: a body that cannot be text is not copied to a scan worker, unless its first bytes say
it is a page whatever its label; real worker processes with the shipped library."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow
from netmon_proxy.phrase_scanner import PhraseScanner

from netmon.ops import counters
from netmon.scan.findings import ScanResult
from netmon.scan.workers import ScanWorkers

LIBRARY = Path(__file__).resolve().parents[2] / "library"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4


def flow(content_type: str, body: bytes, url: str = "http://pics.example/a.png") -> object:
    f = tflow.tflow(resp=True)
    f.request.url = url
    f.request.headers["host"] = f.request.host
    f.request.content = b""  # a GET
    f.response.headers["content-type"] = content_type
    f.response.content = body
    return f


@pytest.mark.timeout(120)
async def test_images_stay_in_the_proxy_and_a_page_labelled_as_an_image_is_scanned() -> None:
    recorded: list[ScanResult] = []
    scanner = PhraseScanner(recorded.append)
    scanner.pool = ScanWorkers(LIBRARY, None, on_result=scanner._finished, on_error=scanner._failed)
    scanner.pool.start()
    counters.reset()
    with taddons.context():  # the recorder's context reads the options
        try:
            async with asyncio.timeout(60):
                while not all(w.ready for w in scanner.pool.current):
                    await asyncio.sleep(0.05)
            scanner.response(flow("image/png", PNG))
            scanner.response(flow("text/css", b"body { color: red }\n" * 50, "http://pics.example/s.css"))
            assert scanner.pool.inflight == 0  # neither went to a worker
            assert counters.snapshot().get("scan.skipped.binary-type") == 1
            assert counters.snapshot().get("scan.skipped.code-type") == 1
            # a pupil's page served as an image (a script can fetch it and show it) is read as a page
            page = b"<!DOCTYPE html><html><body><p>I want to kill myself tonight</p></body></html>"
            scanner.response(flow("image/png", page, "http://pics.example/chat.png"))
            # an image found by a search engine still has its search terms read
            scanner.response(flow("image/jpeg", PNG, "https://www.google.com/search?q=how+to+kys&tbm=isch"))
            assert scanner.pool.inflight == 2
            async with asyncio.timeout(60):
                while scanner.pool.inflight:
                    await asyncio.sleep(0.02)
            assert sorted(f.source for r in recorded for f in r.findings) == ["page", "search"]
            assert counters.snapshot().get("scan.skipped.binary-type") == 2
        finally:
            scanner.pool.close()
            counters.reset()


@pytest.mark.timeout(120)
async def test_a_result_with_hits_is_recorded_with_the_flows_full_who_and_where() -> None:
    """The recorded context reuses the job's host, URL and method and adds the device, the person and the
    time: the same as working it all out again from the flow."""
    from netmon_proxy.context import USER_KEY, flow_context

    recorded: list[ScanResult] = []
    scanner = PhraseScanner(recorded.append)
    scanner.pool = ScanWorkers(LIBRARY, None, on_result=scanner._finished, on_error=scanner._failed)
    scanner.pool.start()
    page = b"<!DOCTYPE html><html><body><p>I want to kill myself tonight</p></body></html>"
    f = flow("text/html", page, "http://93.184.216.34/chat?room=7")
    f.request.headers["host"] = "Chat.Example:80"  # the name the pupil's browser used
    f.metadata[USER_KEY] = {"user": "pupil1", "role": "student", "year_group": "9", "groups": ["y9"]}
    with taddons.context():
        try:
            async with asyncio.timeout(60):
                while not all(w.ready for w in scanner.pool.current):
                    await asyncio.sleep(0.05)
            scanner.response(f)
            async with asyncio.timeout(60):
                while scanner.pool.inflight:
                    await asyncio.sleep(0.02)
            assert len(recorded) == 1
            context = recorded[0].context
            assert context == flow_context(f)
            assert context.host == "chat.example" and context.method == "GET"
            assert context.url == "http://Chat.Example/chat?room=7"  # by the name the browser used
            assert context.user == "pupil1" and context.client_ip and context.time > 0
        finally:
            scanner.pool.close()
