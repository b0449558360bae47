"""LibraryWatcher: a changed library is rebuilt in the background; a broken edit keeps the old one."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from netmon.scan.library import Library, load_library
from netmon.scan.library_watch import LibraryWatcher

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "library-mini"


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    shutil.copytree(FIXTURE, root)
    return root


def touch_later(path: Path, text: str) -> None:
    """Write ``text`` and make sure the modification time moves on (coarse file-system clocks)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


class Recorder:
    def __init__(self) -> None:
        self.libraries: list[Library] = []
        self.errors: list[str] = []
        self.event = threading.Event()

    def on_change(self, library: Library) -> None:
        self.libraries.append(library)
        self.event.set()

    def on_error(self, message: str) -> None:
        self.errors.append(message)
        self.event.set()

    def wait(self) -> None:
        assert self.event.wait(10), "the watcher did not report"
        self.event.clear()


def test_reload_on_change_and_keep_old_on_broken_edit(lib: Path) -> None:
    rec = Recorder()
    watcher = LibraryWatcher(lib, None, rec.on_change, rec.on_error, interval=0.05)
    watcher.start()
    try:
        violence = lib / "en" / "violence.txt"
        touch_later(violence, violence.read_text() + "punch | 2\n")
        rec.wait()
        assert rec.errors == []
        assert any(e.phrase == "punch" for e in rec.libraries[-1].entries)

        # a broken edit: reported once, in one line naming file and line; no new library
        touch_later(violence, violence.read_text() + "kick | 9\n")
        rec.wait()
        assert len(rec.libraries) == 1
        (message,) = rec.errors
        assert message == f"{violence}:8: severity must be 1-5 (got 9)"
        assert "\n" not in message
        time.sleep(0.3)
        assert len(rec.errors) == 1  # not repeated at every poll

        # fixed: a new library again
        touch_later(violence, violence.read_text().replace("kick | 9", "kick | 2"))
        rec.wait()
        assert len(rec.libraries) == 2
        assert any(e.phrase == "kick" for e in rec.libraries[-1].entries)
    finally:
        watcher.stop()
    assert watcher._thread is None


def test_overlay_changes_are_watched(lib: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    (overlay / "en").mkdir(parents=True)
    rec = Recorder()
    watcher = LibraryWatcher(lib, overlay, rec.on_change, rec.on_error, interval=0.05)
    watcher.start()
    try:
        touch_later(overlay / "en" / "suicide.txt", "@category suicide\n@language en\n-kms\n")
        rec.wait()
        assert not any(e.phrase == "kms" for e in rec.libraries[-1].entries)
        (lib / "en" / "bullying.txt").unlink()  # a removed file is a change too
        rec.wait()
        assert not any(e.category == "bullying" for e in rec.libraries[-1].entries)
    finally:
        watcher.stop()


def test_check_now_without_thread(lib: Path) -> None:
    rec = Recorder()
    watcher = LibraryWatcher(lib, None, rec.on_change, rec.on_error)
    assert watcher.check_now() is False
    touch_later(lib / "categories.txt", (lib / "categories.txt").read_text() + "nonsense\n")
    assert watcher.check_now() is True
    assert rec.errors and rec.errors[0].startswith(f"{lib}/categories.txt:7: ")
    assert rec.libraries == []
    assert load_library(FIXTURE)  # the fixture itself is untouched


def test_a_failing_callback_does_not_stop_the_watcher(lib: Path) -> None:
    calls: list[Library] = []

    def explode(library: Library) -> None:
        calls.append(library)
        raise RuntimeError("boom")

    watcher = LibraryWatcher(lib, None, explode, lambda message: None, interval=0.05)
    watcher.start()
    try:
        path = lib / "en" / "violence.txt"
        touch_later(path, path.read_text() + "punch | 2\n")
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        touch_later(path, path.read_text() + "kick | 2\n")
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(calls) == 2
    finally:
        watcher.stop()


def test_a_grammar_file_edit_is_a_change(lib: Path) -> None:
    rec = Recorder()
    watcher = LibraryWatcher(lib, None, rec.on_change, rec.on_error)
    touch_later(lib / "en" / "intent.grammar", "this is not grammar\n")
    assert watcher.check_now() is True, "a new or edited .grammar file must be noticed"
