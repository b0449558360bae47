"""Reload the phrase library when its files change: netmon's one file watcher over the library files.

``LibraryWatcher(root, overlay, on_change, on_error)`` is a :class:`netmon.config.watch.FileWatcher`
whose stamp is every file that makes up the library and overlay (:func:`signature`). A settled change
is loaded and validated in the watcher's thread and handed to ``on_change(library)``; a broken edit calls
``on_error(message)`` once with one line naming file, line and problem, and the caller keeps its previous
library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from netmon.config.watch import FileWatcher, Stamp
from netmon.scan.library import CATEGORIES_FILE, Library, load_library

log = logging.getLogger(__name__)

Signature = Stamp

#: How long the files must stay unchanged before :meth:`LibraryWatcher.check_now` reads a change.
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
                    candidates.extend(sorted(f for f in sub.iterdir() if f.suffix in (".txt", ".grammar")))
        except OSError:
            pass
        for path in candidates:
            try:
                st = path.stat()
            except OSError:
                continue
            items.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(items)


class LibraryWatcher(FileWatcher[Library]):
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
        super().__init__(
            lambda: signature(self.root, self.overlay),
            self._load,
            on_change=on_change,
            on_error=on_error,
            interval=interval,
            name="netmon-library-watch",
        )

    def _load(self) -> Library:
        library = load_library(self.root, self.overlay)
        log.info(
            "library reloaded: %d phrases, %d host-scoped lines (fingerprint %s)",
            len(library.entries),
            len(library.scoped),
            library.fingerprint,
        )
        return library

    def start(self) -> LibraryWatcher:  # type: ignore[override]
        if not self.running:
            self.rebase()
        super().start()
        return self

    def check_now(self, settle: float = SETTLE_SECONDS) -> bool:
        return super().check_now(settle)
