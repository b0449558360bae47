"""The slow path, run only when a match needs explaining: ``normalise_mapped(text)`` normalises exactly
like ``normalise`` (the same code, with a log) and maps normalised positions back to the original text."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from netmon.scan.normalise.fast import _code_pieces, _run
from netmon.scan.normalise.fold import fold_char


def _decode_pieces(
    text: str, found: list[tuple[int, int, str]] | None = None
) -> list[tuple[int, int, int, int]]:
    """The decode step as (input start, input end, output start, output end) of each replacement;
    ``found``: the codes the decode step logged (else found again)."""
    pieces: list[tuple[int, int, int, int]] = []
    shift = 0
    for a, b, decoded in _code_pieces(text) if found is None else found:
        size = len(decoded)
        pieces.append((a, b, a + shift, a + shift + size))
        shift += size - (b - a)
    return pieces


def _back(
    pieces: list[tuple[int, int, int, int]], starts: np.ndarray, lasts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maps output positions (start, last character) through replacement ``pieces`` to the input."""
    out_s = starts.copy()
    out_l = lasts.copy()
    if not pieces:
        return out_s, out_l
    outs = [p[2] for p in pieces]
    for k, (pos, res, is_start) in enumerate(((starts, out_s, True), (lasts, out_l, False))):
        del k
        for idx, q in enumerate(pos.tolist()):
            j = bisect_right(outs, q) - 1
            if j < 0:
                res[idx] = q
                continue
            a, b, c, d = pieces[j]
            if q < d:
                res[idx] = a if is_start else b - 1
            else:
                res[idx] = q - d + b
    return out_s, out_l


def _unfold(pre: str, q: np.ndarray) -> np.ndarray:
    """Positions in the folded text -> positions in ``pre``, the text before folding, where some
    characters folded to several ("½" -> "1 2"): each position inside one maps to it, every other
    position moves back by the characters added before it. Only those characters are looked at (a few
    on a page), never a running count over every character."""
    codes = np.frombuffer(pre.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    wide = np.flatnonzero(codes >= 128)  # ASCII characters fold to one character
    points, inverse = np.unique(codes[wide], return_inverse=True)
    lengths = np.array([len(fold_char(chr(p))) for p in points.tolist()], dtype=np.int64)[inverse]
    several = lengths != 1
    where, size = wide[several], lengths[several]  # the characters that folded to several, and to how many
    added = np.cumsum(size - 1)  # characters added up to and including each of them
    first = where + added - (size - 1)  # where each one's folded characters start
    k = np.searchsorted(first, q, side="right") - 1  # the last of them starting at or before q
    out = q.copy()
    after = k >= 0
    kk = k[after]
    inside = q[after] < first[kk] + size[kk]
    out[after] = np.where(inside, where[kk], q[after] - added[kk])
    return out


def _map_back(
    log: list[tuple[object, ...]], starts: np.ndarray, lasts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Replays ``log`` backwards: normalised (start, last character) positions -> original positions."""
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(lasts, dtype=np.int64)
    for entry in reversed(log):
        kind = entry[0]
        if kind == "keep":
            mask = entry[1]
            assert isinstance(mask, np.ndarray)
            kept = np.flatnonzero(mask)
            if entry[2] == "repeats":  # the kept letters of a run also cover the dropped ones after them
                nxt = e + 1
                inside = nxt < len(kept)
                e_new = np.full(len(e), len(mask) - 1, dtype=np.int64)
                e_new[inside] = kept[nxt[inside]] - 1
                s, e = kept[s], e_new
            else:
                s, e = kept[s], kept[e]
        elif kind == "slice":
            offset = entry[1]
            assert isinstance(offset, int)
            s, e = s + offset, e + offset
        elif kind == "fold":
            pre = entry[1]
            assert isinstance(pre, str)
            s, e = _unfold(pre, s), _unfold(pre, e)
        elif kind == "runs":
            continue
        elif kind == "decode":
            original = entry[1]
            assert isinstance(original, str)
            found = entry[2] if len(entry) > 2 else None
            s, e = _back(_decode_pieces(original, found), s, e)  # type: ignore[arg-type]
    return s, e


class Mapped:
    """Normalised text that can map its positions back to the original text.

    ``span(a, b)`` maps the normalised span ``[a, b)`` to the original (cheap: only the positions
    asked for). ``offsets[i]`` / ``ends[i]``: original start and end (exclusive) of normalised char i
    (computed for every character on first use).
    """

    __slots__ = ("original", "text", "_log", "_all")

    def __init__(self, original: str, text: str, log: list[tuple[object, ...]]) -> None:
        self.original = original
        self.text = text
        self._log = log
        self._all: tuple[np.ndarray, np.ndarray] | None = None

    def spans(self, starts: list[int], ends: list[int]) -> list[tuple[int, int]]:
        """Original spans of several normalised spans ``[starts[k], ends[k])`` (ends exclusive, > start)."""
        if not starts:
            return []
        s, e = _map_back(self._log, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64) - 1)
        return [(int(a), int(b) + 1) for a, b in zip(s.tolist(), e.tolist(), strict=True)]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of the normalised span ``[start, end)`` (end exclusive)."""
        if start >= end:
            pos = self.span(start, start + 1)[0] if start < len(self.text) else len(self.original)
            return pos, pos
        return self.spans([start], [end])[0]

    def original_text(self, start: int, end: int) -> str:
        """The original text of the normalised span ``[start, end)``: what the pupil saw."""
        a, b = self.span(start, end)
        return self.original[a:b]

    @property
    def has_runs(self) -> bool:
        """Whether the normalised text has a run of three of the same letter."""
        return bool(self.letter_runs)

    @property
    def letter_runs(self) -> list[tuple[int, int]]:
        """Spans of the runs of three of the same letter in the normalised text."""
        for entry in self._log:
            if entry[0] == "runs":
                starts = entry[1]
                assert isinstance(starts, tuple)
                return [(p, p + 3) for p in starts]
        return []

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._all is None:
            n = len(self.text)
            s, e = _map_back(self._log, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64))
            self._all = (s, e + 1)
        return self._all

    @property
    def offsets(self) -> np.ndarray:
        return self._arrays()[0]

    @property
    def starts(self) -> np.ndarray:
        return self._arrays()[0]

    @property
    def ends(self) -> np.ndarray:
        return self._arrays()[1]


def normalise_mapped(text: str) -> Mapped:
    """Normalise ``text`` exactly like ``normalise`` (same code) and keep the way back to ``text``."""
    log: list[tuple[object, ...]] = []
    return Mapped(text, _run(text, log), log)
