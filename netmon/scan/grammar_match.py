"""The intent grammar, compiled: evaluates rules near the anchor words the matcher's automaton found.

``CompiledGrammar(grammar)`` is built once, with the matcher. Its ``anchor_keys()`` are added to the
matcher's one Aho-Corasick automaton, so finding anchor words costs nothing more than the phrase pass.
For each stretch of text around anchor words (``REACH`` characters either side, stretches that touch
merged), ``matches(norm, anchors)`` splits the stretch into words once, looks every word sequence up in
one dictionary of class phrases, and tries only the rules whose anchor classes were found there. A text
with no anchor word costs nothing here.

Rule semantics (docs/library-format.md): slots in order, at most ``gap`` words between two filled
slots, optional slots may be skipped; a match is cancelled when a word of an ``unless:`` class lies in a
gap or in the ``before`` words before it (words inside a filled slot never count: "cant stop thinking
about" is an intent, not a negation), and lowered to ``lowered`` when a word of a ``lower:`` class is
within ``LOWER_REACH`` words. Of a rule's matches in a stretch, the earliest and shortest are kept,
never two that overlap. A lowered threat or hate (``COVERING``: violence, bullying, hate speech) also
lowers the phrase hits of its category that lie wholly inside it (``lower_covered``): when the grammar
has read "im gonna kill my brother he ate my pizza" as hyperbole, the phrase "kill my brother" inside it
does not alert on its own. Never for suicide or self-harm: "i want to kill myself lol" keeps its phrase
hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from netmon.scan.findings import Hit
from netmon.scan.grammar import LOWER_REACH, Grammar, Rule
from netmon.scan.normalise import steps_applied
from netmon.scan.normalise.mapped import Mapped

#: Categories whose lowered rule matches also lower the phrase hits they cover (threats to others, where
#: friendly hyperbole and game talk are the everyday false alarm; a pupil's own risk is never lowered so).
COVERING = frozenset({"violence", "bullying", "hate_speech"})
#: Characters of normalised text either side of an anchor word that a rule may reach into.
REACH = 120
#: Flood safety (a text made of anchor words costs its size, not its words): at most this many anchor
#: words of one text are weighed (the earliest), and a stretch split into words is at most STRETCH long.
MAX_ANCHORS = 4000
STRETCH = 2000
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class GrammarMatch:
    """One rule matched in normalised text: the span, the severity given, and why."""

    rule: Rule
    start: int  # normalised offsets
    end: int
    severity: int
    filled: tuple[tuple[str, str], ...]  # (slot name, the words that filled it)
    notes: tuple[str, ...]

    def explain(self) -> tuple[str, ...]:
        slots = " + ".join(f"{name} '{words}'" for name, words in self.filled)
        return (f"rule {self.rule.name} [{self.rule.pattern}]: {slots}", *self.notes)


def _variants(phrase: str) -> tuple[str, ...]:
    out = [phrase]
    if "l" in phrase:
        out.append(phrase.replace("l", "i"))  # leetspeak "1" folds to "i": "ki11 myself"
    if " " in phrase:
        out.append(phrase.replace(" ", ""))  # spaced letters joined: "k i l l m y s e l f"
    return tuple(dict.fromkeys(out))


class CompiledGrammar:
    def __init__(self, grammar: Grammar | None) -> None:
        grammar = grammar or Grammar()
        ids: dict[tuple[str, str], int] = {}
        self.names: list[str] = []
        phrases: dict[tuple[str, ...], set[int]] = {}
        anchors: dict[str, set[int]] = {}

        def class_id(lang: str, name: str) -> int:
            if (lang, name) not in ids:
                ids[(lang, name)] = len(self.names)
                self.names.append(name)
            return ids[(lang, name)]

        for wc in grammar.classes:
            cid = class_id(wc.language, wc.name)
            for phrase in wc.phrases:
                for v in _variants(phrase):
                    phrases.setdefault(tuple(v.split(" ")), set()).add(cid)
                    if wc.anchor:
                        anchors.setdefault(f" {v} ", set()).add(cid)
        # a rule: (rule, slot class ids, unless ids, between ids, lower ids)
        self.rules: list[tuple[Rule, tuple[int, ...], frozenset[int], frozenset[int], frozenset[int]]] = []
        by_anchor: dict[int, list[int]] = {}
        anchor_ids = {cid for ids_ in anchors.values() for cid in ids_}
        self.required: list[frozenset[int]] = []  # per rule: the anchor classes a match needs
        for rule in grammar.rules:
            slot_ids = []
            for slot in rule.slots:
                if slot.literal is not None:
                    cid = class_id(rule.language, "'" + slot.literal)
                    phrases.setdefault(tuple(slot.literal.split(" ")), set()).add(cid)
                else:
                    cid = class_id(rule.language, slot.name)
                slot_ids.append(cid)
                if not slot.optional and cid in anchor_ids:
                    by_anchor.setdefault(cid, []).append(len(self.rules))
            unless = frozenset(class_id(rule.language, n) for n in rule.unless)
            between = frozenset(class_id(rule.language, n) for n in rule.between)
            lower = frozenset(class_id(rule.language, n) for n in rule.lower)
            self.rules.append((rule, tuple(slot_ids), unless, between, lower))
            self.required.append(
                frozenset(
                    c for c, s in zip(slot_ids, rule.slots, strict=True) if not s.optional and c in anchor_ids
                )
            )
        self.by_anchor = {cid: tuple(dict.fromkeys(r)) for cid, r in by_anchor.items()}
        self.phrases = {k: tuple(v) for k, v in phrases.items()}
        sizes: dict[str, set[int]] = {}
        for k in phrases:
            sizes.setdefault(k[0], set()).add(len(k))
        self.sizes = {w: tuple(sorted(n)) for w, n in sizes.items()}  # first word -> phrase lengths
        self._anchor_keys = {k: tuple(v) for k, v in anchors.items() if set(v) & set(self.by_anchor)}

    def anchor_keys(self) -> dict[str, tuple[int, ...]]:
        """Padded automaton keys (`` word ``) -> anchor class ids used by some rule."""
        return self._anchor_keys

    def matches(
        self, norm: str, anchors: list[tuple[tuple[int, ...], int, int]], limit: int | None = None
    ) -> list[GrammarMatch]:
        """Rule matches near ``anchors`` ((class ids, start, end) in ``norm``), in text order."""
        if not anchors or not self.rules:
            return []
        anchors.sort(key=lambda a: a[1])
        del anchors[MAX_ANCHORS:]
        # each anchor word, with the anchor classes found within REACH of it, names the rules that can
        # match there (every required anchor class present); only those windows are split into words
        stretches: list[tuple[int, int, set[int]]] = []
        first = 0
        for cids, start, end in anchors:
            while anchors[first][2] < start - REACH:
                first += 1
            near: set[int] = set()
            j = first
            while j < len(anchors) and anchors[j][1] <= end + REACH:
                near.update(anchors[j][0])
                j += 1
            rules = {r for cid in cids for r in self.by_anchor.get(cid, ()) if self.required[r] <= near}
            if not rules:
                continue
            lo, hi = max(0, start - REACH), end + REACH
            if stretches and lo <= stretches[-1][1] and hi - stretches[-1][0] <= STRETCH:
                stretches[-1] = (stretches[-1][0], max(hi, stretches[-1][1]), stretches[-1][2] | rules)
            else:
                stretches.append((lo, hi, rules))
        out: list[GrammarMatch] = []
        counts: dict[int, int] = {}
        for lo, hi, rules in stretches:
            self._stretch(norm, lo, hi, sorted(rules), out, counts, limit)
        out.sort(key=lambda m: (m.start, -m.severity, m.end))
        return out

    def _stretch(
        self,
        norm: str,
        lo: int,
        hi: int,
        rule_ids: list[int],
        out: list[GrammarMatch],
        counts: dict[int, int],
        limit: int | None,
    ) -> None:
        lo = norm.rfind(" ", 0, lo) + 1 if lo > 0 else 0  # whole words only
        end = norm.find(" ", hi)
        hi = len(norm) if end == -1 else end
        spans = [m.span() for m in _WORD.finditer(norm, lo, hi)]  # offsets in norm
        words = [norm[a:b] for a, b in spans]
        occ: dict[int, list[tuple[int, int]]] = {}
        phrases, sizes, n = self.phrases, self.sizes, len(words)
        for i, w in enumerate(words):
            for size in sizes.get(w, ()):
                if i + size > n:
                    break
                for cid in phrases.get(tuple(words[i : i + size]), ()):
                    occ.setdefault(cid, []).append((i, i + size))
        for r in rule_ids:
            if limit is not None and counts.get(r, 0) >= limit:
                continue
            for m in self._rule(r, occ, words, spans):
                out.append(m)
                counts[r] = counts.get(r, 0) + 1

    def _rule(
        self, r: int, occ: dict[int, list[tuple[int, int]]], words: list[str], spans: list[tuple[int, int]]
    ) -> list[GrammarMatch]:
        rule, slot_ids, unless, between, lower = self.rules[r]
        if any(cid not in occ for cid, s in zip(slot_ids, rule.slots, strict=True) if not s.optional):
            return []
        found: list[tuple[tuple[int, int, int], ...]] = []
        acc: list[tuple[int, int, int]] = []
        gap = rule.gap
        starts: dict[int, dict[int, list[int]]] = {}  # class id -> word index -> ends of its phrases there
        for cid in slot_ids:
            if cid not in starts:
                at = starts[cid] = {}
                for a, b in occ.get(cid, ()):
                    at.setdefault(a, []).append(b)

        def walk(k: int, prev: int | None) -> None:
            if len(found) >= 64:
                return
            if k == len(slot_ids):
                if acc:
                    found.append(tuple(acc))
                return
            at = starts[slot_ids[k]]
            for a in at if prev is None else range(prev, prev + gap + 1):
                for b in at.get(a, ()):
                    acc.append((k, a, b))
                    walk(k + 1, b)
                    acc.pop()
            if rule.slots[k].optional:
                walk(k + 1, prev)

        walk(0, None)
        kept: list[GrammarMatch] = []
        taken_to = -1
        # earliest, then shortest, then the fewest words in gaps ("want to" rather than "want" + "to")
        for fill in sorted(found, key=lambda f: (f[0][1], f[-1][2] - f[0][1], -sum(b - a for _, a, b in f))):
            start, stop = fill[0][1], fill[-1][2]
            if start < taken_to:
                continue
            if unless and self._inside(unless, occ, self._gaps(fill, rule.before)):
                continue
            if between and self._inside(between, occ, self._gaps(fill, 0)[1:]):
                continue
            severity, notes = rule.severity, []
            if unless or between:
                notes.append("exceptions absent: " + ", ".join(rule.unless + rule.between))
            if lower:
                near = [(max(0, start - LOWER_REACH), start), (stop, stop + LOWER_REACH)]
                near += [(fill[j][2], fill[j + 1][1]) for j in range(len(fill) - 1)]
                seen = self._inside(lower, occ, near)
                if seen is not None:
                    severity = min(severity, rule.lowered)
                    said = " ".join(words[seen[1] : seen[2]])
                    notes.append(f"lowered to {severity}: {self.names[seen[0]]} '{said}' nearby")
            taken_to = stop
            filled = tuple((rule.slots[k].name, " ".join(words[a:b])) for k, a, b in fill)
            if rule.note:
                notes.append(rule.note)
            kept.append(
                GrammarMatch(rule, spans[start][0], spans[stop - 1][1], severity, filled, tuple(notes))
            )
        return kept

    @staticmethod
    def _gaps(fill: tuple[tuple[int, int, int], ...], before: int) -> list[tuple[int, int]]:
        out = [(max(0, fill[0][1] - before), fill[0][1])]
        out += [(fill[j][2], fill[j + 1][1]) for j in range(len(fill) - 1)]
        return out

    @staticmethod
    def _inside(
        cids: frozenset[int], occ: dict[int, list[tuple[int, int]]], ranges: list[tuple[int, int]]
    ) -> tuple[int, int, int] | None:
        """The first occurrence of a class of ``cids`` lying wholly inside one of ``ranges``."""
        for cid in cids:
            for a, b in occ.get(cid, ()):
                for lo, hi in ranges:
                    if lo <= a and b <= hi:
                        return cid, a, b
        return None


def grammar_hits(text: str, mapped: Mapped, matches: list[GrammarMatch]) -> list[Hit]:
    """Hits for grammar rule matches: the rule, its file and line, and the words in each slot."""
    spans = mapped.spans([m.start for m in matches], [m.end for m in matches])
    out = []
    for m, (o_start, o_end) in zip(matches, spans, strict=True):
        matched = text[o_start:o_end]
        out.append(
            Hit(
                phrase=f"rule {m.rule.name}",
                category=m.rule.category,
                severity=m.severity,
                language=m.rule.language,
                library_file=m.rule.file,
                line=m.rule.line,
                start=o_start,
                end=o_end,
                matched_text=matched,
                steps=steps_applied(matched),
                rules=m.explain(),
            )
        )
    return out


def lower_covered(phrase_hits: list[Hit], rule_hits: list[Hit], matches: list[GrammarMatch]) -> list[Hit]:
    """``phrase_hits`` with each hit that lies wholly inside a lowered rule match of its category (one
    whose ``lower:`` class was found: hyperbole, fiction, help-seeking; ``COVERING`` categories only)
    capped at that match's severity, unless a rule match of the category that was not lowered also
    covers it. ``rule_hits`` are the hits
    of ``matches``, in order (their offsets in the original text)."""
    lowered = []
    kept = []
    for m, h in zip(matches, rule_hits, strict=True):
        (lowered if m.severity < m.rule.severity and h.category in COVERING else kept).append(h)
    if not lowered:
        return phrase_hits
    out = []
    for h in phrase_hits:
        cap = None
        for g in lowered:
            if g.category == h.category and g.start <= h.start and h.end <= g.end and g.severity < h.severity:
                cap = g if cap is None or g.severity < cap.severity else cap
        if cap is not None and not any(
            g.category == h.category and g.start <= h.start and h.end <= g.end and g.severity >= h.severity
            for g in kept
        ):
            why = next((r for r in cap.rules if r.startswith("lowered to ")), "lowered")
            h = replace(h, severity=cap.severity, rules=(*h.rules, f"{why} (with {cap.phrase})"))
        out.append(h)
    return out
