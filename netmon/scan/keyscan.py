"""The matcher's pass over normalised text: every occurrence of every automaton key, as pyahocorasick's
``Automaton.iter`` gives them, with hyperscan doing the pass where it can.

``KeyScan(keys)`` takes the keys in value order (key ``keys[v]`` has value ``v``) and
``KeyScan.iter(text)`` returns ``(end, v)`` pairs, ``end`` the index of a key's last character, ordered
by ``end`` and, at one end, longest key first: exactly ``Automaton.iter``'s matches and order
(``tests/netmon/test_keyscan.py`` compares them). hyperscan (an optional dependency: x86-64 wheels with
their own libhs) reads ASCII text in literal mode, 2-3 times faster than pyahocorasick with the
library's ~30,000 keys; non-ASCII text (its offsets would be bytes, not characters), a machine where
hyperscan does not import (ARM gateways), and a second thread scanning at the same moment all use the
pyahocorasick automaton, which is always built.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from collections.abc import Sequence

import ahocorasick

try:  # optional: x86-64 wheels only
    import hyperscan as _hs
except ImportError:  # ARM and other machines without the wheel: pyahocorasick alone
    _hs = None

__all__ = ["KeyScan", "hyperscan_available"]

log = logging.getLogger(__name__)


#: A text with more matches than this (and more than one per ``DENSE_CHARS`` characters) is left to
#: pyahocorasick: each hyperscan match is a Python call, slower than pyahocorasick's iteration when
#: matches are dense (a flood of one phrase: 2 MB took 0.15 s against 0.08 s), quicker when they are
#: sparse (real pages: about one per thousand characters).
DENSE_MIN = 1000
DENSE_CHARS = 200


def hyperscan_available() -> bool:
    """Whether hyperscan imports here (x86-64 with its wheel)."""
    return _hs is not None


#: Run by ``_compiled`` in a child Python: reads pickled keys (UTF-8 bytes), writes the serialised database.
_CHILD = """
import pickle, sys, hyperscan
keys = pickle.load(sys.stdin.buffer)
db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
n = len(keys)
db.compile(expressions=keys, ids=list(range(n)), elements=n, flags=[0] * n, literal=True)
sys.stdout.buffer.write(hyperscan.dumpb(db))
"""


def _compiled(keys: Sequence[str]) -> object | None:
    """The hyperscan database of ``keys``, or None (logged) when it cannot be had. It is compiled in a
    short-lived child process and loaded here: compiling ~40,000 literals takes ~70 MB for a moment,
    which would otherwise stay in a scan worker's peak memory (``WORKER_RSS_CEILING``)."""
    # keys in other scripts are UTF-8: in ASCII text (the only text hyperscan reads here) they cannot
    # match, as no byte of a multi-byte character is ASCII
    expressions = [k.encode("utf-8") for k in keys]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=pickle.dumps(expressions),
            capture_output=True,
            check=True,
            timeout=600,
        )
        db = _hs.loadb(done.stdout, _hs.HS_MODE_BLOCK)  # type: ignore[union-attr]
        db.scratch = _hs.Scratch(db)  # type: ignore[union-attr]  # a loaded database has none yet
        return db
    except (OSError, subprocess.SubprocessError, _hs.error) as exc:  # type: ignore[union-attr]
        log.warning("hyperscan could not compile the keys (%s): using pyahocorasick", type(exc).__name__)
        return None


class KeyScan:
    """All occurrences of ``keys`` in a text (see the module documentation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.automaton = ahocorasick.Automaton()
        for value, key in enumerate(keys):
            self.automaton.add_word(key, value)
        if keys:
            self.automaton.make_automaton()
        self._lengths = [len(k) for k in keys]
        self._db = None
        self._hs = _hs  # the module this database belongs to
        if keys and hyperscan_available():
            self._db = _compiled(keys)
        self.backend = "hyperscan" if self._db is not None else "pyahocorasick"

    def iter(self, text: str) -> list[tuple[int, int]]:
        """``(end, value)`` of every key occurrence in ``text``, in ``Automaton.iter``'s order."""
        if not self._lengths:
            return []
        if self._db is None or not text.isascii():
            return list(self.automaton.iter(text))
        found: list[tuple[int, int]] = []
        add = found.append
        dense = max(DENSE_MIN, len(text) // DENSE_CHARS)

        def on_match(value: int, start: int, end: int, flags: int, context: object) -> bool:
            add((end - 1, value))
            return len(found) > dense  # True stops the scan

        try:
            self._db.scan(text.encode("ascii"), match_event_handler=on_match)
        except self._hs.ScanTerminated:
            return list(self.automaton.iter(text))  # dense with matches: pyahocorasick's C loop is quicker
        except self._hs.ScratchInUseError:
            return list(self.automaton.iter(text))  # another thread is scanning with this database
        lengths = self._lengths
        found.sort(key=lambda m: (m[0], -lengths[m[1]]))
        return found
