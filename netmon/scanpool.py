"""A pool of worker processes that scan traffic off the proxy's event loop.

pyahocorasick holds the GIL, so threads would not help (FACTS.md): each worker process compiles the
library once (initializer) and scans jobs. On a library reload a new pool is started with the new
library and swapped in by one reference; the old pool finishes its jobs and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_matcher: Any = None


def _init_worker(library_dir: str, overlay: str | None) -> None:
    global _matcher
    from netmon.library import load_library
    from netmon.matching import Matcher

    _matcher = Matcher.compile(load_library(Path(library_dir), Path(overlay) if overlay else None))


def _scan(job: Any) -> Any:
    from netmon.scanner import scan_job

    return scan_job(job, _matcher)


def _ping() -> bool:
    return _matcher is not None


class ScanPool:
    """Submit jobs; get ``concurrent.futures.Future`` objects whose result is a ScanResult."""

    def __init__(self, library_dir: Path, overlay: Path | None, workers: int = 1) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._executor = self._start(library_dir, overlay)

    def _start(self, library_dir: Path, overlay: Path | None) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["netmon.scanner", "netmon.matching", "netmon.library"])
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(str(library_dir), str(overlay) if overlay else None),
        )
        # Start every worker now so the first page is not delayed by compiling the library.
        for _ in range(self.workers):
            executor.submit(_ping)
        return executor

    def submit(self, job: Any) -> Future[Any]:
        with self._lock:
            return self._executor.submit(_scan, job)

    def reload(self, library_dir: Path, overlay: Path | None) -> None:
        new = self._start(library_dir, overlay)
        with self._lock:
            old, self._executor = self._executor, new
        old.shutdown(wait=False)
        log.info("scan workers restarted with the reloaded library")

    def close(self, wait: bool = True) -> None:
        with self._lock:
            self._executor.shutdown(wait=wait, cancel_futures=not wait)
