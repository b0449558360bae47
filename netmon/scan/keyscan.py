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
from collections.abc import Sequence

import ahocorasick

try:  # optional: x86-64 wheels only
    import hyperscan as _hs
except ImportError:  # ARM and other machines without the wheel: pyahocorasick alone
    _hs = None

__all__ = ["KeyScan", "hyperscan_available"]

log = logging.getLogger(__name__)


def hyperscan_available() -> bool:
    """Whether hyperscan imports here (x86-64 with its wheel)."""
    return _hs is not None


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
        if keys and hyperscan_available():
            try:
                db = _hs.Database(mode=_hs.HS_MODE_BLOCK)  # type: ignore[union-attr]
                db.compile(
                    # keys in other scripts are UTF-8: in ASCII text (the only text read here) they
                    # cannot match, as no byte of a multi-byte character is ASCII
                    expressions=[k.encode("utf-8") for k in keys],
                    ids=list(range(len(keys))),
                    elements=len(keys),
                    flags=[0] * len(keys),
                    literal=True,
                )
                self._db = db
            except _hs.error as exc:  # type: ignore[union-attr]
                log.warning("hyperscan could not compile the keys (%s): using pyahocorasick", exc)
        self.backend = "hyperscan" if self._db is not None else "pyahocorasick"

    def iter(self, text: str) -> list[tuple[int, int]]:
        """``(end, value)`` of every key occurrence in ``text``, in ``Automaton.iter``'s order."""
        if not self._lengths:
            return []
        if self._db is None or not text.isascii():
            return list(self.automaton.iter(text))
        found: list[tuple[int, int]] = []
        add = found.append

        def on_match(value: int, start: int, end: int, flags: int, context: object) -> None:
            add((end - 1, value))

        try:
            self._db.scan(text.encode("ascii"), match_event_handler=on_match)
        except _hs.ScratchInUseError:  # type: ignore[union-attr]
            return list(self.automaton.iter(text))  # another thread is scanning with this database
        lengths = self._lengths
        found.sort(key=lambda m: (m[0], -lengths[m[1]]))
        return found
