"""What makes an alert the gravest: the ``grave`` lines of the grammar files, compiled.

A pupil who writes that they want to die is an alert (severity 4); one who also names when, how or where,
says goodbye, or asks whether a drop is high enough needs the DSL now (5). The same holds for a grooming
message that arranges a meeting, asks for pictures or swears the child to secrecy, a threat with a time,
place or weapon, and hate that calls for violence. A ``grave`` line names, for one category, the classes
of words that mark this (``grave suicide | PLAN, METHOD_Q, SOON, GOODBYE | unless: FICTION, HELP``);
:meth:`Gravity.lift` raises that category's hits at severity 4 in one text to 5 when such a word is in the
text and no word of an ``unless:`` class is, and says why in the hit's explanation. It reads only what a
pupil typed (the matcher applies it with the grammar; the scan job again after the risk model), never
lowers a hit, and leaves hits below 4 alone: it grades an alert, it never makes one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from netmon.scan.findings import Hit
from netmon.scan.grammar import Grammar
from netmon.scan.normalise import normalise

#: Only hits at this severity are raised, to GRAVEST.
ALERT, GRAVEST = 4, 5
#: Characters of a text's normalised form searched for markers: a message, a post or a long prompt, not
#: a 2 MB flood (whose search would cost ~0.2 s of a worker's CPU for nothing).
READ = 20_000


@dataclass(frozen=True, slots=True)
class _Compiled:
    category: str
    markers: re.Pattern[str]  # named groups: one per class, its name
    unless: re.Pattern[str] | None
    where: str


def _pattern(classes: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    groups = []
    for name, phrases in classes.items():
        words = sorted({re.escape(p) for p in phrases}, key=len, reverse=True)
        groups.append(f"(?P<{name}>{'|'.join(words)})")
    return re.compile(r"(?<![^\s])(?:" + "|".join(groups) + r")(?![^\s])")


class Gravity:
    def __init__(self, grammar: Grammar | None) -> None:
        grammar = grammar or Grammar()
        phrases = {(c.language, c.name): c.phrases for c in grammar.classes}
        self._graves: dict[str, list[_Compiled]] = {}
        for g in grammar.graves:
            markers = _pattern({n: phrases[(g.language, n)] for n in g.markers})
            unless = _pattern({n: phrases[(g.language, n)] for n in g.unless}) if g.unless else None
            compiled = _Compiled(g.category, markers, unless, f"{g.file}:{g.line}")
            self._graves.setdefault(g.category, []).append(compiled)

    def __bool__(self) -> bool:
        return bool(self._graves)

    def lift(self, text: str, hits: tuple[Hit, ...] | list[Hit], norm: str | None = None) -> tuple[Hit, ...]:
        """``hits`` of ``text`` with each hit at severity 4 of a category that has a ``grave`` line raised
        to 5 when that line's markers are in the text (and its ``unless:`` classes are not)."""
        wanted = {h.category for h in hits if h.severity == ALERT and h.category in self._graves}
        if not wanted:
            return tuple(hits)
        norm = (normalise(text[: READ * 2]) if norm is None else norm)[:READ]
        why: dict[str, str] = {}
        for category in wanted:
            for g in self._graves[category]:
                if g.unless is not None and g.unless.search(norm):
                    continue
                m = g.markers.search(norm)
                if m is not None:
                    why[category] = f"grave: raised to {GRAVEST} ({m.lastgroup} '{m.group()}', {g.where})"
                    break
        if not why:
            return tuple(hits)
        return tuple(
            replace(h, severity=GRAVEST, rules=(*h.rules, why[h.category]))
            if h.severity == ALERT and h.category in why
            else h
            for h in hits
        )
