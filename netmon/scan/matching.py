"""The compiled matcher: one automaton over the normalised library (``netmon.scan.keyscan``: hyperscan
where it imports, pyahocorasick otherwise).

How a phrase becomes automaton keys (all in normalised form, see netmon.scan.normalise):

- whole-word phrases are stored padded with spaces (``" kill myself "``) and the text is scanned padded
  with spaces, so word boundaries need no check in Python and substring noise ("skill") never leaves C;
  ``embedded`` phrases are stored bare;
- variants (``netmon.scan.normalise.variants``): ``l`` read as ``i`` in any of the words (leetspeak
  ``1`` folds to ``i``: "ki11 myself"), and for phrases of several words the words joined
  ("k i l l m y s e l f" -> "killmyself");
- checked variants: spellings that only a disguise produces, each counted only when ``steps_applied``
  finds that disguise in the matched text: some of the ``l`` of a word read as ``i`` ("ki1l" -> "kiil",
  leetspeak; "heli" alone is not "hell") and a word starting with "a" or "i" split after it, as spaced
  letters after the word "a" or "i" are ("a n x i e t y" -> "a nxiety"; "a lone" is not "alone");
- runs: the text keeps at most three of a run ("kiiiill" -> "kiiill"); where a word has such runs, the
  text around it is scanned again with each run written once, twice or left, in the combinations that
  make a word of some key ("kiiilll" -> "kill", "shooot" -> "shoot");
- ``unless:`` exception phrases are stored with a leading space: they match from the start of a word
  and may run on ("scunthorpe" also covers "scunthorpes"), and cancel a hit they overlap; ``with:``
  co-occurrence phrases are whole words, found with str.find once a phrase has matched.

Offsets are mapped back to the original text (``normalise_mapped``) only when a hit survives its rules.

A ``Matcher`` pickles as its library and is rebuilt by ``Matcher.compile`` when unpickled, so it can be
sent to worker processes; workers may equally call ``load_library`` + ``Matcher.compile`` themselves.

Why one module: compiling keys and scanning with them are one contract (each key's back-offsets, its
phrases, exceptions, checked steps and grammar anchors are written by the compiler and read by the scan),
and the hot loop stays in one place to keep it fast; the spelling variants and the grammar live in
their own modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

import ahocorasick

from netmon.scan.findings import Hit
from netmon.scan.grammar_match import CompiledGrammar, grammar_hits, lower_covered
from netmon.scan.gravity import Gravity
from netmon.scan.keyscan import KeyScan
from netmon.scan.library import Entry, Library
from netmon.scan.normalise import normalise, normalise_mapped, steps_applied
from netmon.scan.normalise.variants import (
    _letter_runs,
    _Squeezed,
    _term_variants,
    checked_variants,
    phrase_variants,
    with_variants,
)

__all__ = ["Matcher", "checked_variants", "phrase_variants"]

#: A key found more than this many times the hit cap is skipped: the phrases it holds are capped by then,
#: and its grammar anchors and exceptions stop growing (a flood of one word costs its size, not its hits).
KEY_CAP_FACTOR = 20
_SKELETON = re.compile(r"(.)\1+")  # a run of one character, written once: "kiiilll" -> "kil"


def _found(
    found: dict[tuple[int, int, int], tuple[str, ...]],
    needs: dict[tuple[int, int, int], str],
    key: tuple[int, int, int],
    rules: tuple[str, ...],
    need: str,
) -> None:
    """Record a hit; ``needs[key]`` is the step its text must show, kept only while every spelling that
    found it needed one."""
    if key not in found:
        found[key] = rules
        if need:
            needs[key] = need
    elif not need:
        needs.pop(key, None)


@dataclass(frozen=True, slots=True)
class _Key:
    """What one automaton key stands for. Spans in normalised text: [end - back_start, end - back_end)."""

    back_start: int
    back_end: int
    phrases: tuple[int, ...]  # entry indexes
    unless: tuple[int, ...]  # exception term ids
    anchors: tuple[int, ...] = ()  # grammar anchor class ids (netmon.scan.grammar_match)
    checked: tuple[tuple[int, str], ...] = ()  # (entry, step the matched text must show): checked_variants


@dataclass(frozen=True, slots=True)
class _Rules:
    """The context rules of one entry: exception term ids (the automaton finds exceptions with the
    phrases) and co-occurrence spellings (found with str.find, once per text and entry)."""

    unless_names: tuple[str, ...]
    unless_rule: str  # "exceptions absent: ..." for explanations
    unless: frozenset[int]  # exception term ids (their spellings are automaton keys)
    with_names: dict[str, str]  # padded spelling " w " -> name
    within: int | None
    longest_with: int  # length of the longest co-occurrence spelling, unpadded

    @classmethod
    def build(cls, entry: Entry, term_ids: dict[str, int]) -> _Rules:
        unless_names = tuple(normalise(t) for t in entry.unless)
        unless = frozenset(term_ids.setdefault(n, len(term_ids)) for n in unless_names)
        with_names = {f" {v} ": n for n in (normalise(t) for t in entry.with_) for v in with_variants(n)}
        rule = "exceptions absent: " + ", ".join(f"'{name}'" for name in unless_names)
        longest = max((len(w) - 2 for w in with_names), default=0)
        return cls(unless_names, rule, unless, with_names, entry.within, longest)


class Matcher:
    """Finds library phrases in text. Build once with ``Matcher.compile(library)``; ``scan`` is pure."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.fingerprint = library.fingerprint
        self.entries: tuple[Entry, ...] = library.entries
        keys: dict[str, tuple[list[int], list[int]]] = {}
        checked: dict[str, list[tuple[int, str]]] = {}
        rules: list[_Rules] = []
        term_ids: dict[str, int] = {}
        longest = 1
        for i, entry in enumerate(self.entries):
            for variant in phrase_variants(entry.normalised):
                keys.setdefault(variant if entry.embedded else f" {variant} ", ([], []))[0].append(i)
                longest = max(longest, len(variant) + 2)
            for variant, step in checked_variants(entry.normalised).items():
                checked.setdefault(variant if entry.embedded else f" {variant} ", []).append((i, step))
                longest = max(longest, len(variant) + 2)
            rules.append(_Rules.build(entry, term_ids))
        # exceptions match from a word start ("scunthorpe" in "scunthorpes")
        for term, tid in term_ids.items():
            for variant in _term_variants(term):
                keys.setdefault(f" {variant}", ([], []))[1].append(tid)
                longest = max(longest, len(variant) + 1)
        self._grammar = CompiledGrammar(library.grammar)
        self.gravity = Gravity(library.grammar)
        anchor_keys = self._grammar.anchor_keys()
        for key in (*anchor_keys, *checked):  # grammar anchor words share the one automaton
            keys.setdefault(key, ([], []))
        self._rules = tuple(rules)
        self._longest = longest
        self._words = frozenset(w for key in keys for w in key.split())  # words of every key
        self._skeletons = frozenset(_SKELETON.sub(r"\1", w) for w in self._words)  # runs written once
        self._embedded = tuple(
            dict.fromkeys(v for e in self.entries if e.embedded for v in phrase_variants(e.normalised))
        )
        self._embedded_skeletons = tuple(dict.fromkeys(_SKELETON.sub(r"\1", e) for e in self._embedded))
        # words only the grammar needs (often common ones) have their own automaton: pages never pay for it
        self._keys: list[_Key] = []
        self._anchor_only: list[_Key] = []
        main_keys: list[str] = []
        grammar_automaton = ahocorasick.Automaton()
        for key, (phrases, unless) in keys.items():
            lead = 1 if key.startswith(" ") else 0
            trail = 1 if key.endswith(" ") and len(key) > 1 else 0
            # padded text index p is normalised index p - 1; a key ending at p spans p-len+1 .. p
            made = _Key(
                len(key) - lead,
                trail,
                tuple(dict.fromkeys(phrases)),
                tuple(dict.fromkeys(unless)),
                anchor_keys.get(key, ()),
                tuple(dict.fromkeys(checked.get(key, ()))),
            )
            own = self._keys if made.phrases or made.unless or made.checked else self._anchor_only
            if own is self._keys:
                main_keys.append(key)
            else:
                grammar_automaton.add_word(key, len(own))
            own.append(made)
        if self._anchor_only:
            grammar_automaton.make_automaton()
        self._key_scan = KeyScan(main_keys)  # hyperscan where it can, else the pyahocorasick automaton
        self._grammar_automaton = grammar_automaton
        self.size = len(self._keys) + len(self._anchor_only)

    @classmethod
    def compile(cls, library: Library) -> Matcher:
        return cls(library)

    def __reduce__(self) -> tuple[object, tuple[Library]]:
        return (Matcher.compile, (self.library,))

    # -- scanning ---------------------------------------------------------------------------------
    def scan(self, text: str, limit: int | None = None, grammar: bool = True) -> tuple[Hit, ...]:
        """All library hits in ``text`` that survive their rules, with offsets in ``text``. ``limit``:
        at most that many candidates of any one phrase are weighed (the earliest; later ones are
        dropped as they are found), so that a text dense with hits costs its size, not its hits.
        ``grammar``: also apply the intent grammar (the scan job does for what a pupil typed, not for
        page bodies, which are other people's words)."""
        if not text or not (self._keys or (grammar and self._anchor_only)):
            return ()
        typed = grammar  # what a pupil typed: the grammar and its grave lines apply
        # long texts: numpy's masks are logged as they are made, so the way back costs nothing extra;
        # short texts: the quicker str path, and again with the way back only when a phrase matched
        mapped = normalise_mapped(text) if len(text) > 512 else None
        norm = mapped.text if mapped is not None else normalise(text)
        if not norm:
            return ()
        found: dict[tuple[int, int, int], tuple[str, ...]] = {}  # (entry, norm start, norm end) -> rules
        needs: dict[tuple[int, int, int], str] = {}  # step a hit's original text must show
        padded = f" {norm} "
        cache: dict[str, list[int]] = {}
        anchors: list[tuple[tuple[int, ...], int, int]] = []
        candidates, exceptions = self._candidates(padded, 0, limit, anchors if grammar else None)
        if grammar and self._anchor_only:
            only = self._anchor_only
            anchor_seen: dict[int, int] = {}
            for end, v in self._grammar_automaton.iter(padded):
                if limit is not None:
                    n = anchor_seen.get(v, 0)
                    if n >= limit * KEY_CAP_FACTOR:
                        continue
                    anchor_seen[v] = n + 1
                k = only[v]
                anchors.append((k.anchors, end - k.back_start, end - k.back_end))
        for (i, start, end), need in candidates.items():
            rules = self._weigh(i, start, end, exceptions, padded, cache)
            if rules is not None:
                _found(found, needs, (i, start, end), rules, need)
        runs = _letter_runs(norm) if mapped is None else mapped.letter_runs
        if runs:
            self._elongated(norm, runs, found, needs, limit)
        grammar = self._grammar.matches(norm, anchors, limit) if anchors else []
        if not found and not grammar:
            return ()
        if mapped is None:
            mapped = normalise_mapped(text)
            if mapped.text != norm:  # cannot happen (property-tested); never report wrong offsets
                raise AssertionError("normalise and normalise_mapped disagree")
        keys = list(found)
        spans = mapped.spans([k[1] for k in keys], [k[2] for k in keys])
        seen: set[tuple[int, int, int]] = set()
        hits = []
        for key, (o_start, o_end) in zip(keys, spans, strict=True):
            i = key[0]
            if (i, o_start, o_end) in seen:
                continue  # the same match found by the plain and an elongated scan
            matched = text[o_start:o_end]
            steps = steps_applied(matched)
            if key in needs and needs[key] not in steps:
                continue  # "a lone" is not "a l o n e", "heli" is not "he1l"
            seen.add((i, o_start, o_end))
            entry = self.entries[i]
            hits.append(
                Hit(
                    phrase=entry.phrase,
                    category=entry.category,
                    severity=entry.severity,
                    language=entry.language,
                    library_file=entry.file,
                    line=entry.line,
                    start=o_start,
                    end=o_end,
                    matched_text=matched,
                    steps=steps,
                    rules=found[key],
                )
            )
        if grammar:
            rule_hits = grammar_hits(text, mapped, grammar)
            hits = [*lower_covered(hits, rule_hits, grammar), *rule_hits]
        hits.sort(key=lambda h: (h.start, -h.severity, h.end, h.phrase))
        if typed and self.gravity:
            return self.gravity.lift(text, hits, norm)
        return tuple(hits)

    def _candidates(
        self,
        padded: str,
        offset: int,
        limit: int | None = None,
        anchors: list[tuple[tuple[int, ...], int, int]] | None = None,
    ) -> tuple[dict[tuple[int, int, int], str], list[tuple[int, int, int]]]:
        """Phrase matches (entry, start, end) and exception matches (term, start, end) in ``padded``
        (text with a space at each end); spans in the text, plus ``offset``. Each phrase match maps to
        the step its original text must show ("" when none: see ``checked_variants``). Grammar anchor
        words (class ids, start, end) are added to ``anchors`` when given."""
        out: dict[tuple[int, int, int], str] = {}
        exceptions: list[tuple[int, int, int]] = []
        keys = self._keys
        seen = [0] * len(self.entries) if limit is not None else None
        # a cap for grammar anchors and exceptions too: a key found more than KEY_CAP_FACTOR * ``limit``
        # times adds nothing more (a 2 MB post of one word would otherwise hold every match in memory);
        # generous, so that a grammar rule still sees a common anchor word late in a long text
        key_seen: dict[int, int] = {}
        key_cap = limit * KEY_CAP_FACTOR if limit is not None else 0
        for end, v in self._key_scan.iter(padded):
            if limit is not None:
                n = key_seen.get(v, 0)
                if n >= key_cap:
                    continue
                key_seen[v] = n + 1
            k = keys[v]
            start, stop = end - k.back_start + offset, end - k.back_end + offset
            for i in k.phrases:
                if seen is not None:  # the hit cap, applied while matching
                    if seen[i] >= limit:  # type: ignore[operator]
                        continue
                    seen[i] += 1
                out[(i, start, stop)] = ""
            for i, step in k.checked:
                if seen is not None:
                    if seen[i] >= limit:  # type: ignore[operator]
                        continue
                    seen[i] += 1
                out.setdefault((i, start, stop), step)
            for t in k.unless:
                exceptions.append((t, start, stop))
            if k.anchors and anchors is not None:
                anchors.append((k.anchors, start, stop))
        return out, exceptions

    def _squeezes(self, norm: str, runs: list[tuple[int, int]]) -> list[_Squeezed]:
        """The spellings of ``norm`` worth scanning again: in each word holding runs, each run written
        once, twice or left as it is, where that makes a word of some key ("kiiilll" -> "kill", "www"
        -> nothing). One spelling per choice of the word with the most useful choices."""
        by_word: dict[int, list[tuple[int, int]]] = {}
        for run in runs:
            by_word.setdefault(norm.rfind(" ", 0, run[0]) + 1, []).append(run)
        choices: list[tuple[list[tuple[int, int]], list[tuple[int, ...]]]] = []
        known: dict[str, list[tuple[int, ...]]] = {}  # word -> its useful choices, once per text
        for start, word_runs in by_word.items():
            end = norm.find(" ", word_runs[-1][1])
            word = norm[start : len(norm) if end == -1 else end]
            useful = known.get(word)
            if useful is None:
                useful = known[word] = self._useful(word, [(a - start, b - start) for a, b in word_runs])
            if useful:
                choices.append((word_runs, useful))
        out = []
        for n in range(max((len(c[1]) for c in choices), default=0)):
            chosen = [
                (run, k)
                for word_runs, useful in choices
                for run, k in zip(word_runs, useful[min(n, len(useful) - 1)], strict=True)
            ]
            out.append(_Squeezed(norm, [r for r, _ in chosen], [k for _, k in chosen]))
        return out

    def _useful(self, word: str, runs: list[tuple[int, int]]) -> list[tuple[int, ...]]:
        """How many times to write each run of ``word`` (1, 2 or 3) to make a word of some key."""
        skeleton = _SKELETON.sub(r"\1", word)  # the same for every choice: most words stop here
        if skeleton not in self._skeletons and not any(e in skeleton for e in self._embedded_skeletons):
            return []
        r = len(runs)  # a word with many runs: each run once, or each twice
        useful: list[tuple[int, ...]] = []
        for ks in product((1, 2, 3), repeat=r) if r <= 3 else [(1,) * r, (2,) * r]:
            pieces: list[str] = []
            last = 0
            for (a, b), k in zip(runs, ks, strict=True):
                pieces += (word[last:a], word[a] * k)
                last = b
            squeezed = "".join(pieces) + word[last:]
            if squeezed != word and (squeezed in self._words or any(e in squeezed for e in self._embedded)):
                useful.append(ks)
        return useful

    def _elongated(
        self,
        norm: str,
        runs: list[tuple[int, int]],
        found: dict[tuple[int, int, int], tuple[str, ...]],
        needs: dict[tuple[int, int, int], str],
        limit: int | None = None,
    ) -> None:
        """Runs of three letters also match a letter written once or twice in a phrase ("kiiill" is
        "kill", "shooot" is "shoot", "kiiilll" is "kill"): scan the text around each run again, with the
        runs written as ``_squeezes`` finds useful."""
        reach = self._longest
        for squeezed in self._squeezes(norm, runs):
            variant = squeezed.text
            padded = f" {variant} "
            cache: dict[str, list[int]] = {}
            windows: list[tuple[int, int]] = []
            for pos, k in zip(squeezed.where, squeezed.ks, strict=True):
                a = variant.rfind(" ", 0, max(0, pos - reach)) + 1
                b = variant.find(" ", pos + k + reach)
                b = len(variant) if b == -1 else b
                if windows and a <= windows[-1][1]:
                    windows[-1] = (windows[-1][0], b)
                else:
                    windows.append((a, b))
            inside = list(zip(squeezed.where, squeezed.ks, strict=True))
            for a, b in windows:
                candidates, exceptions = self._candidates(f" {variant[a:b]} ", a, limit)
                for (i, start, end), need in candidates.items():
                    if not any(start < pos + k and pos < end for pos, k in inside):
                        continue  # no run inside: the plain scan already decided this one
                    rules = self._weigh(i, start, end, exceptions, padded, cache)
                    if rules is not None:
                        _found(found, needs, (i, *squeezed.to_norm(start, end)), rules, need)

    def _weigh(
        self,
        i: int,
        start: int,
        end: int,
        exceptions: list[tuple[int, int, int]],
        padded: str,
        cache: dict[str, list[int]],
    ) -> tuple[str, ...] | None:
        """The rules weighed for entry ``i`` at ``norm[start:end]``, or None when they cancel the hit.
        ``cache`` keeps where each co-occurrence spelling is in this text."""
        rules = self._rules[i]
        out: list[str] = []
        if rules.unless:
            for t, a, b in exceptions:
                if a < end and start < b and t in rules.unless:
                    return None  # an exception overlaps the hit
            out.append(rules.unless_rule)
        if rules.with_names:
            within = rules.within
            best: tuple[int, str] | None = None  # (distance, name)
            if within is not None:  # near the hit only: one window wide enough for every spelling
                lo = max(0, start - within - rules.longest_with)
                window = padded[lo : end + within + rules.longest_with + 2]
            for spelling, name in rules.with_names.items():
                size = len(spelling) - 2  # spans in normalised text: padded index p (the space) is norm p
                if within is None:  # anywhere: every occurrence, found once per text and spelling
                    where = cache.get(spelling)
                    if where is None:
                        where = cache[spelling] = []
                        p = padded.find(spelling)
                        while p != -1:
                            where.append(p)
                            p = padded.find(spelling, p + 1)
                else:  # occurrences too far away are weighed and rejected below, like absent ones
                    if spelling not in window:
                        continue
                    where = []
                    p = window.find(spelling)
                    while p != -1:
                        where.append(p + lo)
                        p = window.find(spelling, p + 1)
                for a in where:
                    b = a + size
                    if a < end and start < b:
                        continue  # words inside the hit itself do not count as co-occurrence
                    distance = a - end if a >= end else start - b
                    if best is None or distance < best[0]:
                        best = (distance, name)
                        if within is None:
                            break
                if within is None and best is not None:
                    break  # present: that is all it takes
            if best is None or (within is not None and best[0] > within):
                return None
            if within is None:
                out.append(f"co-occurrence '{best[1]}' present")
            else:
                out.append(f"co-occurrence '{best[1]}' present within {within} ({best[0]} characters away)")
        return tuple(out)
