"""A scan a pupil cannot flood (issue 16): one job costs its size, not its number of hits; jobs wait in a
fair queue (what a pupil types first, devices in turn); a worker's memory stays under its ceiling.

Real worker processes with the shipped library, fed from a real event loop.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path

import pytest

from netmon.scan.fairqueue import BULK, URGENT, FairQueue, job_device, job_priority
from netmon.scan.findings import FlowContext, ScanResult
from netmon.scan.job import MAX_HITS, ScanJob, scan_job
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher
from netmon.scan.workers import DEPTH, WORKER_RSS_CEILING, ScanWorkers

LIBRARY = Path(__file__).resolve().parents[2] / "library"
#: How long a second device's search may wait behind another device's flood (seconds, wall clock, on a
#: shared 2-core machine): at most DEPTH flood jobs already in the worker's hands, then the search.
SEARCH_BOUND = 3.0
#: CPU seconds one flood job may cost a worker (it cost 7.85 s before the cap was applied while matching).
FLOOD_CPU_BOUND = 1.5


def flood_job(device: str = "10.0.0.66") -> ScanJob:
    """A 2 KB gzip form post that inflates to 2 MB of ``kys ``: hundreds of thousands of hits."""
    raw = b"msg=" + b"kys+" * (2 * 1024 * 1024 // 4 - 1)
    body = gzip.compress(raw, 9)
    assert len(body) < 2200
    context = FlowContext(time=0.0, client_ip=device, host="forum.example", url="https://forum.example/post")
    return ScanJob.for_http(
        context,
        request_headers=(
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Encoding", "gzip"),
        ),
        request_body=body,
    )


def search_job(device: str = "10.0.0.77") -> ScanJob:
    url = "https://www.google.com/search?q=how+to+kys"
    context = FlowContext(time=0.0, client_ip=device, host="www.google.com", url=url)
    page = b"<html><body><p>Results</p></body></html>"
    return ScanJob.for_http(
        context, response_status=200, response_headers=(("Content-Type", "text/html"),), response_body=page
    )


def page_job(device: str) -> ScanJob:
    context = FlowContext(time=0.0, client_ip=device, host="news.example", url="https://news.example/a")
    body = b"<html><body><p>" + b"news " * 1000 + b"</p></body></html>"
    return ScanJob.for_http(
        context, response_status=200, response_headers=(("Content-Type", "text/html"),), response_body=body
    )


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(LIBRARY))


# ---------------------------------------------------------------------------------------------------
# One job


def test_a_hit_flood_costs_its_size_not_its_hits(matcher: Matcher) -> None:
    job = flood_job()
    start = time.process_time()
    result = scan_job(job, matcher)
    cost = time.process_time() - start
    (finding,) = result.findings
    assert len(finding.hits) == MAX_HITS and "hit-cap" in result.stats.skipped
    assert result.stats.bytes_scanned == 2 * 1024 * 1024
    assert cost < FLOOD_CPU_BOUND, f"one flood job cost {cost:.2f} s CPU"


def test_a_job_over_its_cpu_budget_skips_what_it_has_not_begun(matcher: Matcher) -> None:
    job = ScanJob(
        context=search_job().context,
        request_url=search_job().request_url,
        request_method="POST",
        request_headers=flood_job().request_headers,
        request_body=flood_job().request_body,
        response_status=200,
        response_headers=(("Content-Type", "text/html"),),
        response_body=b"<p>kys</p>",
        cpu_budget=0.0,
    )
    result = scan_job(job, matcher)
    assert "cpu-budget" in result.stats.skipped
    assert [f.source for f in result.findings] == []  # nothing begun after the budget was spent


# ---------------------------------------------------------------------------------------------------
# The queue


def test_priorities_and_devices() -> None:
    assert job_priority(search_job()) == URGENT
    assert job_priority(flood_job()) == URGENT  # a form post is what a pupil typed
    assert job_priority(ScanJob.for_websocket(search_job().context, "hi")) == URGENT
    assert job_priority(page_job("a")) == BULK
    assert job_device(page_job("10.1.2.3")) == "10.1.2.3"


def test_fair_queue_serves_urgent_first_and_devices_in_turn() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(5):
        q.put(f"a-page{i}", "a", BULK)
        q.put(f"a-post{i}", "a", URGENT)
    q.put("b-page", "b", BULK)
    q.put("b-search", "b", URGENT)
    assert len(q) == 12
    order = q.drain()
    assert order[:3] == ["a-post0", "b-search", "a-post1"]  # b waits for one of a's, not five
    assert order[6:8] == ["a-page0", "b-page"]
    assert len(q) == 0 and q.take() is None


# ---------------------------------------------------------------------------------------------------
# Real workers


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(180)
async def test_a_flood_from_one_device_does_not_delay_another_devices_search() -> None:
    done: dict[str, float] = {}
    order: list[str] = []
    errors: list[str] = []

    def on_result(result: ScanResult, tag: object) -> None:
        done[str(tag)] = time.monotonic()
        order.append(str(tag))

    workers = ScanWorkers(LIBRARY, None, on_result=on_result, on_error=errors.append, workers=1)
    workers.start()
    try:
        async with asyncio.timeout(60):
            while not all(w.ready for w in workers.current):
                await asyncio.sleep(0.05)
        floods = 20
        for i in range(floods):
            assert workers.submit(flood_job(), f"flood{i}")
        submitted = time.monotonic()
        assert workers.submit(search_job(), "search")
        async with asyncio.timeout(150):
            while len(done) < floods + 1:
                await asyncio.sleep(0.02)
        waited = done["search"] - submitted
        assert waited < SEARCH_BOUND, f"the search waited {waited:.2f} s behind another device's flood"
        assert order.index("search") <= 2  # behind the job being scanned (and one more of the flood), no more
        assert errors == []
        rss = _peak_rss(workers.current[0].proc.pid)
        assert rss < WORKER_RSS_CEILING, f"worker peak RSS {rss / 2**20:.0f} MB"
    finally:
        workers.close()


@pytest.mark.timeout(180)
async def test_a_worker_kept_busy_with_many_pages_in_hand_still_scans_a_search_next() -> None:
    """Several jobs go to a worker at once, so that it never waits for a busy proxy to hand it the next;
    the worker scans those in its hands fairly too: a search that comes after them goes next."""
    order: list[str] = []
    errors: list[str] = []
    workers = ScanWorkers(
        LIBRARY, None, on_result=lambda result, tag: order.append(str(tag)), on_error=errors.append, workers=1
    )
    workers.start()
    try:
        async with asyncio.timeout(60):
            while not all(w.ready for w in workers.current):
                await asyncio.sleep(0.05)
        context = FlowContext(time=0.0, client_ip="10.0.0.66", host="news.example", url="https://news.example/")
        body = b"<html><body>" + b"<p>The river flows to the sea past the old mill.</p>" * 4000 + b"</body></html>"
        pages = 16
        for i in range(pages):
            job = ScanJob.for_http(
                context, response_status=200, response_headers=(("Content-Type", "text/html"),), response_body=body
            )
            assert workers.submit(job, f"page{i}")
        async with asyncio.timeout(60):
            while not order:  # the worker has all the pages and has finished its first
                await asyncio.sleep(0.001)
        in_hand = len(workers.current[0].sizes)
        assert workers.submit(search_job(), "search")
        async with asyncio.timeout(120):
            while len(order) < pages + 1:
                await asyncio.sleep(0.01)
        assert in_hand > DEPTH  # more than the two of old were in the worker's hands...
        # ...and the search still went ahead of them (the worker may be a few pages ahead of the answers
        # seen here: it writes them in batches every few milliseconds)
        assert len(order) - order.index("search") - 1 >= in_hand // 2
        assert errors == []
    finally:
        workers.close()
