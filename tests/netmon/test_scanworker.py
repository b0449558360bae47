"""Scan workers: real worker processes fed from a real event loop (asyncio debug mode)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netmon.scan.findings import FlowContext, ScanResult
from netmon.scan.job import ScanJob
from netmon.scan.workers import FrameReader, ScanWorkers, frame, frame_parts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CTX = FlowContext(time=0.0, client_ip="10.0.0.7", host="news.example", url="http://news.example/a")


def page_job(text: str) -> ScanJob:
    body = f"<html><head><title>Story</title></head><body><p>{text}</p></body></html>".encode()
    return ScanJob.for_http(
        CTX, response_status=200, response_headers=(("Content-Type", "text/html"),), response_body=body
    )


class Pool:
    """ScanWorkers plus what its callbacks saw."""

    def __init__(self, library: Path, **kwargs: object) -> None:
        self.results: list[ScanResult] = []
        self.tags: list[object] = []
        self.errors: list[str] = []
        self.workers = ScanWorkers(
            library,
            None,
            on_result=self._on_result,
            on_error=self.errors.append,
            **kwargs,  # type: ignore[arg-type]
        )

    def _on_result(self, result: ScanResult, tag: object) -> None:
        self.results.append(result)
        self.tags.append(tag)

    async def wait(self, results: int = 0, errors: int = 0, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while len(self.results) < results or len(self.errors) < errors:
                await asyncio.sleep(0.01)

    async def ready(self) -> None:
        async with asyncio.timeout(30):
            while not all(w.ready for w in self.workers.current):
                await asyncio.sleep(0.01)

    async def __aenter__(self) -> Pool:
        self.workers.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.workers.close()  # blocking, by design: after the test's loop checks

    def phrases(self) -> list[list[str]]:
        return [sorted({h.phrase for h in r.hits}) for r in self.results]


@pytest.fixture
async def loop_checked(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail the test if a callback held the event loop for more than 50 ms before the (deliberately
    blocking) clean stop: tests call ``workers.close()`` only after ``assert_loop_was_free``."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    caplog.set_level(logging.WARNING, logger="asyncio")
    yield


def assert_loop_was_free(caplog: pytest.LogCaptureFixture) -> None:
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "Executing" in r.getMessage()]
    assert not slow, slow


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "library-mini", tmp_path / "library"))


def test_frames_survive_any_split() -> None:
    """Long byte strings (page bodies) travel after the pickle, unjoined; the reader puts them back."""
    job = page_job("x" * 100_000)
    messages = [
        ("result", "x" * 100_000),
        ("ready", "abc"),
        ("job", job, bytes(range(256)) * 40, b"short"),
        ("error", "ValueError"),
    ]
    stream = b"".join(frame(m) for m in messages)
    reader = FrameReader()
    got: list[object] = []
    for i in range(0, len(stream), 7777):
        got += reader.feed(stream[i : i + 7777])
    assert got == messages
    # the page body is written from the job's own bytes, not from a copy inside the pickle
    parts, size = frame_parts(("job", job))
    assert size == sum(len(memoryview(p)) for p in parts)
    assert [bytes(p) for p in parts[2:]] == [job.response_body]
    assert job.response_body not in bytes(parts[1])


def test_a_corrupt_stream_is_an_error_not_a_huge_allocation() -> None:
    with pytest.raises(ValueError, match="corrupt"):
        list(FrameReader().feed(b"\xff\xff\xff\xff" + b"x" * 10))


async def test_pages_are_scanned_in_worker_processes(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with Pool(library, workers=2) as pool:
        for text in ("I want to die", "a quiet page about rivers", "you loser"):
            assert pool.workers.submit(page_job(text), tag=text)
        await pool.wait(results=3)
        workers = [w.proc for w in pool.workers.current]
        assert len({p.pid for p in workers}) == 2 and all(p.pid != os.getpid() for p in workers)
        assert_loop_was_free(caplog)
    assert sorted(pool.phrases()) == [[], ["loser"], ["want to die"]]
    # each answer comes back with the tag its job was submitted with, whichever worker scanned it
    by_tag = dict(zip(pool.tags, pool.phrases(), strict=True))
    assert by_tag == {
        "I want to die": ["want to die"],
        "a quiet page about rivers": [],
        "you loser": ["loser"],
    }
    assert pool.errors == []
    assert all(p.returncode == 0 for p in workers)  # both exited cleanly at the stop


async def test_close_answers_every_job_in_flight(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    pool = Pool(library)
    pool.workers.start()
    for i in range(40):
        assert pool.workers.submit(page_job(f"story {i}: I want to die"))
    assert_loop_was_free(caplog)
    pool.workers.close()  # a clean stop: every page seen is scanned and handed on before it returns
    assert len(pool.results) == 40
    assert all(p == ["want to die"] for p in pool.phrases())
    assert pool.workers.submit(page_job("after the stop")) is False


async def test_a_full_queue_refuses_jobs_instead_of_growing(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with Pool(library, max_jobs=3) as pool:
        accepted = [pool.workers.submit(page_job(f"page {i}")) for i in range(5)]
        assert accepted == [True, True, True, False, False]
        await pool.wait(results=3)
        assert pool.workers.submit(page_job("room again"))  # answered jobs free their places
        await pool.wait(results=4)
        assert_loop_was_free(caplog)


async def test_a_job_the_worker_cannot_scan_is_counted_and_the_worker_goes_on(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with Pool(library) as pool:
        assert pool.workers.submit("not a scan job")
        assert pool.workers.submit(page_job("I want to die"))
        await pool.wait(results=1, errors=1)
        assert_loop_was_free(caplog)
    assert pool.errors == ["job"]
    assert pool.phrases() == [["want to die"]]


async def test_a_dead_worker_loses_only_its_jobs_counted_and_is_replaced(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with Pool(library) as pool:
        await pool.ready()
        first = pool.workers.current[0].proc
        first.kill()
        assert pool.workers.submit(page_job("written to a worker that is dying"))
        await pool.wait(errors=1)
        assert pool.errors == ["lost"]
        assert pool.workers.inflight == 0
        replacement = pool.workers.current[0].proc
        assert replacement.pid != first.pid
        assert pool.workers.submit(page_job("I want to die"))
        await pool.wait(results=1)
        assert pool.phrases() == [["want to die"]]
        assert_loop_was_free(caplog)


async def test_ctrl_c_in_the_terminal_does_not_kill_workers(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGINT/SIGTERM reach the whole process group; workers stop only when the proxy closes the pipe."""
    async with Pool(library) as pool:
        await pool.ready()
        worker = pool.workers.current[0].proc
        os.kill(worker.pid, signal.SIGINT)
        os.kill(worker.pid, signal.SIGTERM)
        assert pool.workers.submit(page_job("you loser"))
        await pool.wait(results=1)
        assert worker.poll() is None and pool.errors == []
        assert_loop_was_free(caplog)
    assert worker.returncode == 0


async def test_reload_swaps_in_the_new_library_and_old_workers_exit(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with Pool(library) as pool:
        await pool.ready()
        old = pool.workers.current[0].proc
        assert pool.workers.submit(page_job("the word zorblax"))
        with (library / "en" / "violence.txt").open("a") as f:
            f.write("zorblax | 4\n")
        pool.workers.reload(library, None)  # the library watcher calls this from its own thread
        await asyncio.sleep(0.05)
        assert pool.workers.submit(page_job("the word zorblax"))
        await pool.wait(results=2)
        assert pool.phrases() == [[], ["zorblax"]]  # the job sent before the reload: the old library
        async with asyncio.timeout(10):
            while old.poll() is None:
                await asyncio.sleep(0.05)
        assert old.returncode == 0 and pool.errors == []
        assert_loop_was_free(caplog)


async def test_close_with_a_backlog_both_ways_does_not_deadlock(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Megabytes of jobs still to write while the worker's answers (text + snapshot) fill its pipe."""
    pool = Pool(library, max_jobs=1000)
    pool.workers.start()
    paragraph = "you loser, I want to die. " * 4000  # ~100 KB a page, every page a hit
    for i in range(120):
        assert pool.workers.submit(page_job(f"{i} {paragraph}"))
    # all but IN_HAND_BYTES (~40 pages) wait in the proxy's fair queue; close() hands them all over, more
    # than the pipe holds
    assert pool.workers.inflight - len(pool.workers.current[0].sizes) >= 60
    assert_loop_was_free(caplog)
    pool.workers.close(timeout=120)
    assert len(pool.results) == 120 and pool.errors == []


async def test_jobs_of_one_loop_iteration_go_in_one_write_and_a_lone_job_is_not_held(
    library: Path, loop_checked: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs queued while the loop runs one iteration reach the worker in one ``writev`` (one wake-up of the
    worker), and a job submitted alone is written when the loop next comes round, not after a timer."""
    from netmon.scan import workers as workers_module

    writes: list[int] = []
    real_writev = workers_module.writev

    def counted(fd: int, parts: list[bytes | memoryview]) -> int:
        writes.append(len(parts))
        return real_writev(fd, parts)

    monkeypatch.setattr(workers_module, "writev", counted)
    async with Pool(library) as pool:
        await pool.ready()
        for i in range(5):
            assert pool.workers.submit(page_job(f"story {i}: you loser"))
        assert writes == []  # queued: nothing written inside the hook that submitted them
        await asyncio.sleep(0)  # the loop comes round once
        assert len(writes) == 1 and writes[0] >= 5 * 2  # five frames (head and pickle each), one write
        assert not pool.workers.current[0].outbox
        assert pool.workers.submit(page_job("a lone search: I want to die"))
        await asyncio.sleep(0)
        assert len(writes) == 2  # written at once, alone
        await pool.wait(results=6)
        assert_loop_was_free(caplog)
    assert sorted(map(tuple, pool.phrases())) == [("loser",)] * 5 + [("want to die",)]
