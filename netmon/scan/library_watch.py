"""Reload the phrase library when its files change, in a background thread.

``LibraryWatcher(root, overlay, on_change, on_error)`` polls the modification times of the library
and overlay files every ``interval`` seconds. When something changed, it loads and validates the new
library in its own thread and calls ``on_change(library)``; a broken edit calls ``on_error(message)``
with one line naming file, line and problem, and the caller keeps its previous library. The same broken
state is reported once, not at every poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from netmon.errors import NetmonError
from netmon.scan.library import CATEGORIES_FILE, Library, load_library

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]


#: How long the files must stay unchanged before a changed library is read.
SETTLE_SECONDS = 0.05


def signature(root: Path, overlay: Path | None) -> Signature:
    """(path, mtime_ns, size) of every file that makes up the library (a vanished file drops out)."""
    items: list[tuple[str, int, int]] = []
    for base in (root, overlay):
        if base is None:
            continue
        candidates = [base / CATEGORIES_FILE]
        try:
            for sub in sorted(base.iterdir()):
                if sub.is_dir():
                    candidates.extend(sorted(sub.glob("*.txt")))
        except OSError:
            pass
        for path in candidates:
            try:
                st = path.stat()
            except OSError:
                continue
            items.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(items)


class LibraryWatcher:
    """A daemon thread that rebuilds the library when its files change (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        overlay: Path | None,
        on_change: Callable[[Library], None],
        on_error: Callable[[str], None],
        interval: float = 2.0,
    ) -> None:
        self.root = Path(root)
        self.overlay = Path(overlay) if overlay is not None else None
        self.on_change = on_change
        self.on_error = on_error
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: Signature = signature(self.root, self.overlay)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._seen = signature(self.root, self.overlay)
        self._thread = threading.Thread(target=self._loop, name="netmon-library-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def check_now(self) -> bool:
        """Poll once (in the caller's thread); True when the files changed since the last poll."""
        current = signature(self.root, self.overlay)
        if current == self._seen:
            return False
        # An editor may still be writing (truncate, then write): read only a library that holds still.
        time.sleep(SETTLE_SECONDS)
        if signature(self.root, self.overlay) != current:
            return False  # still changing: look again at the next poll
        self._seen = current
        try:
            library = load_library(self.root, self.overlay)
        except NetmonError as exc:
            message = " ".join(str(exc).split())
            log.error("library not reloaded, keeping the previous one: %s", message)
            self._call(self.on_error, message)
        except OSError as exc:  # a file vanished between the poll and the read: try again next time
            self._seen = ()
            log.warning("library changed while being read (%s); retrying", exc)
        else:
            log.info(
                "library reloaded: %d phrases (fingerprint %s)", len(library.entries), library.fingerprint
            )
            self._call(self.on_change, library)
        return True

    def _call(self, callback: Callable[..., None], argument: object) -> None:
        try:
            callback(argument)
        except Exception:  # noqa: BLE001 - a failing callback must not kill the watcher
            log.exception("library watcher callback failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_now()
            except Exception:  # noqa: BLE001 - keep watching whatever happens
                log.exception("library watcher poll failed")
