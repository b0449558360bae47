"""The spellings under which the matcher indexes a phrase (``phrase_variants``, ``checked_variants``)
and the spellings of traffic with letter runs written shorter (``_Squeezed``): see netmon.scan.matching."""

from __future__ import annotations

import re
from bisect import bisect_right

import numpy as np

_RUN3 = re.compile(r"([^\W\d_])\1\1")
_REPEATS4 = re.compile(r"(\w)\1{3,}")


def _collapse(s: str) -> str:
    return _REPEATS4.sub(lambda m: m.group(1) * 3, s)


def _l_to_i(s: str) -> str | None:
    return _collapse(s.replace("l", "i")) if "l" in s else None


def phrase_variants(normalised: str) -> tuple[str, ...]:
    """Every normalised spelling under which a phrase is indexed (see the module docstring)."""
    words = normalised.split(" ")
    with_l = [i for i, w in enumerate(words) if "l" in w]
    variants = [normalised]
    if with_l:
        if len(with_l) <= 3:  # each word with an "l" read with "1" for it or not: "ki11 myself"
            for mask in range(1, 1 << len(with_l)):
                changed = list(words)
                for bit, i in enumerate(with_l):
                    if mask >> bit & 1:
                        changed[i] = _collapse(words[i].replace("l", "i"))
                variants.append(" ".join(changed))
        else:
            variants.append(_collapse(normalised.replace("l", "i")))
    if len(words) > 1:
        variants.append(normalised.replace(" ", ""))
    return tuple(dict.fromkeys(variants))


def checked_variants(normalised: str) -> dict[str, str]:
    """Spellings that only count when a normalisation step made them, by the step the matched text must
    show: ``1`` for some of the ``l`` of a word only ("ki1l" -> "kiil", leetspeak), and a word starting
    with "a" or "i" split after that letter (spaced letters: "a n x i e t y" -> "a nxiety")."""
    plain = phrase_variants(normalised)
    out: dict[str, str] = {}
    for variant in _mixed_l(normalised):
        out.setdefault(variant, "leetspeak")
        if " " in variant:
            out.setdefault(variant.replace(" ", ""), "leetspeak")
    for variant in (*plain, *out):
        for split in _split_a_i(variant):
            out.setdefault(split, "spaced-letters")
    return {v: step for v, step in out.items() if v not in plain}


def _mixed_l(normalised: str) -> list[str]:
    """``normalised`` with each of its ``l`` read as ``l`` or as ``i`` (at most six: 64 spellings)."""
    if normalised.count("l") > 6:
        return []
    mixed = [""]
    for w in normalised.split(" "):
        spots = [i for i, c in enumerate(w) if c == "l"]
        spellings = []
        for mask in range(1 << len(spots)):
            letters = list(w)
            for bit, i in enumerate(spots):
                if mask >> bit & 1:
                    letters[i] = "i"
            spellings.append(_collapse("".join(letters)))
        mixed = [f"{m} {x}" if m else x for m in mixed for x in dict.fromkeys(spellings)]
    return mixed


def _term_variants(normalised: str) -> tuple[str, ...]:
    leet = _l_to_i(normalised)
    return (normalised, leet) if leet and leet != normalised else (normalised,)


def with_variants(normalised: str) -> tuple[str, ...]:
    """Spellings of a ``with:`` co-occurrence phrase: ``_term_variants``, its ``l`` read as ``i`` one by
    one ("te1l") and a word starting with "a" or "i" split after it ("i m m i g r a n t s"); unchecked,
    as the phrase itself has matched."""
    plain = tuple(dict.fromkeys((*_term_variants(normalised), *_mixed_l(normalised))))
    return tuple(dict.fromkeys((*plain, *(split for v in plain for split in _split_a_i(v)))))


def _split_a_i(variant: str) -> list[str]:
    """``variant`` with one word of four letters or more that starts with "a" or "i" split after that
    letter, as normalisation splits spaced letters after the word "a" or "i" ("a nxiety")."""
    parts = variant.split(" ")
    return [
        " ".join((*parts[:i], w[0], w[1:], *parts[i + 1 :]))
        for i, w in enumerate(parts)
        if w[0] in "ai" and len(w) >= 4
    ]


def _letter_runs(norm: str) -> list[tuple[int, int]]:
    """Spans of runs of three of the same letter in normalised text (the text keeps at most three)."""
    if len(norm) < 512:
        return [m.span() for m in _RUN3.finditer(norm)]
    if norm.isascii():
        arr = np.frombuffer(norm.encode("ascii"), dtype=np.uint8)
        if len(arr) < 3:
            return []
        same = arr[1:] == arr[:-1]
        start = same[:-1] & same[1:] & (arr[:-2] >= 97) & (arr[:-2] <= 122)
        if not np.count_nonzero(start):
            return []
        return [(int(i), int(i) + 3) for i in np.flatnonzero(start)]
    return [m.span() for m in _RUN3.finditer(norm)]


class _Squeezed:
    """``norm`` with each run of three letters ``runs[j]`` written ``ks[j]`` times, and the way back."""

    def __init__(self, norm: str, runs: list[tuple[int, int]], ks: list[int]) -> None:
        pieces: list[str] = []
        self.runs = runs
        self.ks = ks
        self.where: list[int] = []  # variant position of each squeezed run
        self.shrunk: list[int] = []  # characters dropped up to and including each run
        last = shrink = 0
        for (a, b), k in zip(runs, ks, strict=True):
            pieces += (norm[last:a], norm[a] * k)
            self.where.append(a - shrink)
            shrink += 3 - k
            self.shrunk.append(shrink)
            last = b
        pieces.append(norm[last:])
        self.text = "".join(pieces)

    def _back(self, pos: int, at_end: bool) -> int:
        j = bisect_right(self.where, pos) - 1
        if j >= 0 and pos < self.where[j] + self.ks[j]:
            return self.runs[j][1] - 1 if at_end else self.runs[j][0]
        return pos + (self.shrunk[j] if j >= 0 else 0)

    def to_norm(self, start: int, end: int) -> tuple[int, int]:
        """The normalised span of the variant span ``[start, end)``."""
        return self._back(start, False), self._back(end - 1, True) + 1
