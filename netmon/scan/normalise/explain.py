"""Which normalisation steps changed a matched span, for explanations."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from netmon.scan.normalise.fast import (
    _CODED,
    _GONE,
    _RUN3,
    _SPACED,
    _SYMBOLS_TO_SPACE,
    _TABLE,
    _bang_inside,
    _coded,
    _leet,
    _run,
    _spaced,
)
from netmon.scan.normalise.fold import _HOMOGLYPHS

#: Normalisation step names, in the order they are reported in explanations.
STEPS = (
    "html-entity",
    "percent-decoding",
    "nfkc",
    "diacritics",
    "homoglyph",
    "zero-width",
    "leetspeak",
    "spaced-letters",
    "repeats",
)


@lru_cache(maxsize=8192)
def steps_applied(original: str) -> tuple[str, ...]:
    """Names of the normalisation steps that changed ``original`` (a matched span), in STEPS order."""
    words = original.split(" ")
    if (
        original.isascii()
        and "".join(words).isalpha()
        and min(map(len, words)) > 1
        and not _RUN3.search(original.lower())
    ):
        return ()  # plain words: only case and spacing, which are not worth explaining
    found: set[str] = set()
    if "&" in original or "%" in original:
        for m in _CODED.finditer(original):
            found.add("html-entity" if m.group().startswith("&") else "percent-decoding")
    decoded = _CODED.sub(_coded, original) if found else original
    for c in decoded:
        if c < "\x80":
            continue
        if unicodedata.category(c) == "Cf":
            found.add("zero-width")
            continue
        decomposed = unicodedata.normalize("NFKD", c)
        if any(unicodedata.category(x)[0] == "M" for x in decomposed):
            found.add("diacritics")
        if any(unicodedata.category(x)[0] != "M" for x in decomposed) and decomposed != unicodedata.normalize(
            "NFD", c
        ):
            found.add("nfkc")
        if any(x in _HOMOGLYPHS or x.casefold() in _HOMOGLYPHS for x in decomposed):
            found.add("homoglyph")
    data = decoded.encode("ascii", "netmon-fold").translate(_TABLE)
    if b"!" in data and _bang_inside(data):
        found.add("leetspeak")
    data = data.replace(b"!", b" ")
    if _leet(data).translate(_SYMBOLS_TO_SPACE) != data.translate(_SYMBOLS_TO_SPACE):
        found.add("leetspeak")
    log: list[tuple[object, ...]] = []
    _run(original, log)
    found.update(str(entry[2]) for entry in log if entry[0] == "keep" and entry[2] in STEPS)
    letters = " ".join(data.decode("utf-8").replace(_GONE, "").split())  # before leetspeak: "ki11" is no run
    if _RUN3.search(_SPACED.sub(_spaced, f" {letters} ")):
        found.add("repeats")
    return tuple(step for step in STEPS if step in found)
