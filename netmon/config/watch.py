"""The one file watcher: reload a snapshot when its files change, in a background thread.

``FileWatcher(stamp, load, on_change=..., on_error=...)`` polls ``stamp()`` (a hashable signature of the
watched files: see :func:`stamps`) every ``interval`` seconds. A change is loaded only once the files
have held still for one interval (an editor or a copy may be half-way through a file). ``load()`` builds
the new snapshot; a :class:`~netmon.errors.NetmonError` keeps the old one, is logged and handed to
``on_error(message)`` once (the same broken state is not reported at every poll), and kept in
:attr:`FileWatcher.last_error`. Callbacks run in the watcher's thread; a failing callback never stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from netmon.errors import NetmonError

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int], ...]


def stamps(paths: Iterable[Path | str], pattern: str = "**/*") -> Stamp:
    """(path, mtime_ns, size) of every file named, and of every file matching ``pattern`` under every
    directory named; a missing file is (path, 0, -1) so that its appearance is a change."""
    items: list[tuple[str, int, int]] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            try:
                found = sorted(p for p in path.glob(pattern) if p.is_file())
            except OSError:
                found = []
        else:
            found = [path]
        for file in found:
            try:
                st = file.stat()
            except OSError:
                items.append((str(file), 0, -1))
                continue
            items.append((str(file), st.st_mtime_ns, st.st_size))
    return tuple(items)


class FileWatcher[T]:
    """Polls a stamp in a daemon thread and reloads a settled change (see the module docstring)."""

    def __init__(
        self,
        stamp: Callable[[], object],
        load: Callable[[], T],
        *,
        on_change: Callable[[T], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        interval: float = 2.0,
        name: str = "netmon-watch",
    ) -> None:
        self.stamp = stamp
        self.load = load
        self.on_change = on_change
        self.on_error = on_error
        self.interval = interval
        self.name = name
        self.last_error: NetmonError | None = None
        self._seen: object = stamp()
        self._settling: object = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rebase(self) -> None:
        """Take the files as they are now as loaded (after the owner loaded them itself)."""
        self._seen = self.stamp()
        self._settling = None

    def check(self) -> bool:
        """Poll once in the caller's thread: True when a change that has held still since the last poll
        was loaded and handed over (a failed load is reported and keeps the old snapshot)."""
        current = self.stamp()
        if current == self._seen:
            self._settling = None
            return False
        if current != self._settling:
            self._settling = current  # still being written, perhaps: look again next time
            return False
        return self._take(current)

    def check_now(self, settle: float = 0.05) -> bool:
        """Poll now, waiting ``settle`` seconds for the files to hold still instead of one interval;
        True when a change was taken up (loaded, or reported as broken)."""
        current = self.stamp()
        if current == self._seen:
            return False
        time.sleep(settle)
        if self.stamp() != current:
            return False  # still changing: look again at the next poll
        self._take(current)
        return True

    def _take(self, current: object) -> bool:
        self._settling = None
        self._seen = current
        try:
            snapshot = self.load()
        except NetmonError as exc:
            self.last_error = exc
            message = " ".join(str(exc).split())
            log.error("%s: not reloaded, keeping the previous snapshot: %s", self.name, message)
            if self.on_error is not None:
                self._call(self.on_error, message)
            return False
        except OSError as exc:  # a file vanished between the poll and the read: try again next time
            self._seen = ()
            log.warning("%s: files changed while being read (%s); retrying", self.name, exc)
            return False
        self.last_error = None
        if self.on_change is not None:
            self._call(self.on_change, snapshot)
        return True

    def _call(self, callback: Callable[[T], None] | Callable[[str], None], argument: object) -> None:
        try:
            callback(argument)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a failing callback must not kill the watcher
            log.exception("%s: callback failed", self.name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - keep watching whatever happens
                log.exception("%s: poll failed", self.name)

    def start(self) -> FileWatcher[T]:
        if self._thread is None and self.interval > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None
