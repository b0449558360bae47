"""The intent grammar: classes of words and rules over them (docs/library-format.md, "Grammar files").

A phrase names one wording; a grammar rule names a shape that many wordings share: "a first-person
subject, an intent marker, then a way of dying, with a few words between them". The grammar is data,
``library/<lang>/*.grammar``, parsed here into the immutable ``Grammar`` that ``load_library`` puts on the
``Library``; ``netmon.scan.grammar_match`` compiles it for the matcher (once, at load).

A file holds, after ``@language`` (and optional ``@about`` lines):

- ``class NAME = word, two words, ...``: a class (names are upper-case); ``anchor NAME = ...``: a class
  whose words are looked for in every text by the matcher's automaton (rules are only evaluated near an
  anchor word, so every rule needs one required anchor slot); ``class NAME += ...`` adds words to a
  class defined earlier (or in the default library, from an overlay), ``class NAME -= ...`` (overlay
  only) removes words;
- ``rule name | category | severity | PATTERN | options``: ``PATTERN`` is slots in order, each a class
  name, ``NAME?`` (optional) or a quoted literal (``'how to'``); options ``gap: N`` (words allowed
  between slots, default 2), ``unless: NAME, ...`` (cancelled when such a word is in a gap or in the
  ``before: N`` words before the match, default 3), ``between: NAME, ...`` (cancelled when such a word
  is in a gap), ``lower: NAME, ...`` (severity lowered to
  ``lowered: N``, default 1, when such a word is within 10 words: help-seeking, fiction), ``note: text``;
- ``-rule name`` (overlay only) removes a rule of the default library;
- ``grave category | NAME, ... | unless: NAME, ...``: in a text a pupil typed, the hits of ``category``
  at severity 4 are raised to 5 when a word of one of the classes is in the text and no word of an
  ``unless:`` class is (``netmon.scan.gravity``): a plan, a method or a time with a suicide alert, a
  meeting, secrecy or pictures with a grooming alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from netmon.scan.normalise import normalise

GRAMMAR_SUFFIX = ".grammar"

_CLASS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RULE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_CLASS_LINE = re.compile(r"^(class|anchor)\s+(\S+)\s*(\+=|-=|=)\s*(.*)$")
_SLOT = re.compile(r"'([^']+)'|([A-Za-z0-9_]+)(\?)?|(\S+)")
_OPTIONS = ("gap", "unless", "between", "before", "lower", "lowered", "note")
DEFAULT_GAP = 2
DEFAULT_BEFORE = 3
DEFAULT_LOWERED = 1
#: Words either side of a match searched for ``lower:`` classes.
LOWER_REACH = 10


class Sink(Protocol):
    def error(self, where: str, message: str) -> None: ...

    def warning(self, where: str, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class WordClass:
    """One class of one language: normalised phrases, and whether the automaton looks for them."""

    name: str
    language: str
    phrases: tuple[str, ...]  # normalised
    anchor: bool
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Slot:
    name: str  # class name, or the literal as written in quotes
    optional: bool = False
    literal: str | None = None  # normalised literal words, for a quoted slot


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    category: str
    severity: int
    language: str
    slots: tuple[Slot, ...]
    file: str
    line: int
    gap: int = DEFAULT_GAP
    unless: tuple[str, ...] = ()
    between: tuple[str, ...] = ()
    before: int = DEFAULT_BEFORE
    lower: tuple[str, ...] = ()
    lowered: int = DEFAULT_LOWERED
    note: str = ""

    @property
    def pattern(self) -> str:
        return " ".join(
            f"'{s.name}'" if s.literal is not None else s.name + "?" * s.optional for s in self.slots
        )


@dataclass(frozen=True, slots=True)
class Grave:
    """``grave category | MARKERS | unless: ...``: what makes an alert of ``category`` the gravest."""

    category: str
    language: str
    markers: tuple[str, ...]  # class names
    unless: tuple[str, ...]
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Grammar:
    classes: tuple[WordClass, ...] = ()
    rules: tuple[Rule, ...] = ()
    graves: tuple[Grave, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)


@dataclass
class GrammarFile:
    """What one grammar file holds, before the layers are merged."""

    display: str
    rel: str
    overlay: bool
    language: str | None = None
    about: list[str] = field(default_factory=list)
    # (op, kind, name, phrases, line): op "=", "+=", "-="; kind "class" or "anchor"
    classes: list[tuple[str, str, str, tuple[str, ...], int]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    removals: list[tuple[str, int]] = field(default_factory=list)
    graves: list[Grave] = field(default_factory=list)


def _terms(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(",") if t.strip())


def parse_grammar(
    lines: Iterable[tuple[int, str]],
    display: str,
    rel: str,
    overlay: bool,
    categories: Iterable[str],
    sink: Sink,
    language_ok: re.Pattern[str],
) -> GrammarFile:
    """Parse the (comment-stripped, non-empty) ``lines`` of one grammar file."""
    known = set(categories)
    parsed = GrammarFile(display=display, rel=rel, overlay=overlay)
    for number, line in lines:
        where = f"{display}:{number}"
        if line.startswith("@"):
            name, _, value = line[1:].partition(" ")
            value = value.strip()
            if name == "language":
                if parsed.language is not None:
                    sink.error(where, "a second @language line (one language per file)")
                elif not language_ok.match(value):
                    sink.error(where, f"@language must be a language tag such as en or cy (got {value!r})")
                else:
                    parsed.language = value
            elif name == "about":
                parsed.about.append(value)
            else:
                sink.error(where, f"unknown directive @{name} in a grammar file (known: @language, @about)")
            continue
        if parsed.language is None:
            sink.error(where, "grammar line before the @language line (start the file with @language)")
            return parsed
        if line.startswith("-rule"):
            name = line[5:].strip()
            if not overlay:
                sink.error(where, "a '-rule' removal line belongs in the school's overlay, not the library")
            elif not _RULE_NAME.match(name):
                sink.error(where, f"'-rule' needs a rule name (got {name!r})")
            else:
                parsed.removals.append((name, number))
            continue
        if line.startswith("rule "):
            rule = _parse_rule(line[5:], where, number, parsed, known, sink)
            if rule is not None:
                parsed.rules.append(rule)
            continue
        if line.startswith("grave "):
            grave = _parse_grave(line[6:], where, number, parsed, known, sink)
            if grave is not None:
                parsed.graves.append(grave)
            continue
        m = _CLASS_LINE.match(line)
        if m is None:
            sink.error(
                where,
                "expected 'class NAME = words', 'anchor NAME = words', 'rule name | ...' or 'grave ...'",
            )
            continue
        kind, name, op, value = m.groups()
        if not _CLASS_NAME.match(name):
            sink.error(where, f"class names are upper-case letters, digits and '_' (got {name!r})")
            continue
        if op == "-=" and not overlay:
            sink.error(
                where, "'class NAME -= words' belongs in the school's overlay (edit the class instead)"
            )
            continue
        phrases = _terms(value)
        if not phrases:
            sink.error(where, f"class {name} needs at least one word or phrase")
            continue
        normalised = []
        for phrase in phrases:
            n = normalise(phrase)
            if not n:
                sink.error(where, f"phrase {phrase!r} normalises to nothing")
                break
            normalised.append(n)
        else:
            parsed.classes.append((op, kind, name, tuple(normalised), number))
    return parsed


def _parse_rule(
    text: str, where: str, number: int, parsed: GrammarFile, known: set[str], sink: Sink
) -> Rule | None:
    parts = [p.strip() for p in text.split("|")]
    if len(parts) not in (4, 5):
        sink.error(where, "expected 'rule name | category | severity | PATTERN | options'")
        return None
    name, category, severity_text, pattern = parts[:4]
    if not _RULE_NAME.match(name):
        sink.error(where, f"rule names are lower-case letters, digits, '_', '.', '-' (got {name!r})")
        return None
    if category not in known:
        sink.error(where, f"unknown category {category!r} (add it to categories.txt first)")
        return None
    if not severity_text.isdigit() or not 1 <= int(severity_text) <= 5:
        sink.error(where, f"severity must be 1-5 (got {severity_text!r})")
        return None
    slots: list[Slot] = []
    for m in _SLOT.finditer(pattern):
        literal, cname, optional, junk = m.groups()
        if junk is not None:
            sink.error(where, f"pattern slot {junk!r}: a class NAME, NAME? or a quoted 'literal'")
            return None
        if literal is not None:
            words = normalise(literal)
            if not words:
                sink.error(where, f"literal {literal!r} normalises to nothing")
                return None
            slots.append(Slot(literal, False, words))
        elif not _CLASS_NAME.match(cname):
            sink.error(where, f"pattern slot {cname!r}: class names are upper-case")
            return None
        else:
            slots.append(Slot(cname, bool(optional)))
    if not any(not s.optional for s in slots):
        sink.error(where, "a pattern needs at least one required slot")
        return None
    values: dict[str, str] = {}
    options = parts[4] if len(parts) == 5 else ""
    note_at = re.search(r"(?:^|;)\s*note\s*:", options)
    if note_at:
        values["note"] = options[note_at.end() :].strip()
        options = options[: note_at.start()]
    for option in (o.strip() for o in options.split(";")):
        if not option:
            continue
        key, _, value = option.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key not in _OPTIONS:
            sink.error(where, f"unknown rule option {key!r} (known: {', '.join(_OPTIONS)})")
            return None
        if key in values:
            sink.error(where, f"option {key!r} given twice")
            return None
        if key in ("gap", "before", "lowered") and not value.isdigit():
            sink.error(where, f"{key}: must be a whole number (got {value!r})")
            return None
        values[key] = value
    for key in ("unless", "between", "lower"):
        for cname in _terms(values.get(key, "")):
            if not _CLASS_NAME.match(cname):
                sink.error(where, f"{key}: takes class names (got {cname!r})")
                return None
    lowered = int(values.get("lowered", DEFAULT_LOWERED))
    if not 1 <= lowered <= 5:
        sink.error(where, f"lowered: must be 1-5 (got {lowered})")
        return None
    assert parsed.language is not None
    return Rule(
        name=name,
        category=category,
        severity=int(severity_text),
        language=parsed.language,
        slots=tuple(slots),
        file=parsed.rel,
        line=number,
        gap=int(values.get("gap", DEFAULT_GAP)),
        unless=_terms(values.get("unless", "")),
        between=_terms(values.get("between", "")),
        before=int(values.get("before", DEFAULT_BEFORE)),
        lower=_terms(values.get("lower", "")),
        lowered=lowered,
        note=values.get("note", ""),
    )


def _parse_grave(
    text: str, where: str, number: int, parsed: GrammarFile, known: set[str], sink: Sink
) -> Grave | None:
    parts = [p.strip() for p in text.split("|")]
    if len(parts) not in (2, 3):
        sink.error(where, "expected 'grave category | CLASS, CLASS | unless: CLASS, ...'")
        return None
    category, markers = parts[0], _terms(parts[1])
    if category not in known:
        sink.error(where, f"unknown category {category!r} (add it to categories.txt first)")
        return None
    unless: tuple[str, ...] = ()
    if len(parts) == 3 and parts[2]:
        key, _, value = parts[2].partition(":")
        if key.strip().lower() != "unless":
            sink.error(where, f"unknown grave option {key.strip()!r} (known: unless)")
            return None
        unless = _terms(value)
    names = markers + unless
    if not markers or any(not _CLASS_NAME.match(n) for n in names):
        sink.error(where, f"grave: takes upper-case class names (got {', '.join(names) or 'none'})")
        return None
    assert parsed.language is not None
    return Grave(category, parsed.language, markers, unless, parsed.rel, number)


def merge_grammar(files: list[GrammarFile], sink: Sink) -> Grammar:
    """Merge default files, then overlay files (in that order), and check every class reference."""
    classes: dict[tuple[str, str], WordClass] = {}
    rules: dict[tuple[str, str], Rule] = {}
    where_rule: dict[tuple[str, str], str] = {}
    for gf in files:
        if gf.language is None:
            continue
        lang = gf.language
        for op, kind, name, phrases, line in gf.classes:
            where = f"{gf.display}:{line}"
            key = (lang, name)
            old = classes.get(key)
            if op == "=":
                if old is not None:
                    sink.error(
                        where, f"class {name} is already defined at {old.file}:{old.line} (add with +=)"
                    )
                    continue
                classes[key] = WordClass(
                    name, lang, tuple(dict.fromkeys(phrases)), kind == "anchor", gf.rel, line
                )
            elif old is None:
                sink.error(where, f"class {name} is not defined (define it with 'class {name} = ...')")
            elif op == "+=":
                added = tuple(dict.fromkeys(old.phrases + phrases))
                classes[key] = WordClass(name, lang, added, old.anchor, old.file, old.line)
            else:
                missing = [p for p in phrases if p not in old.phrases]
                for p in missing:
                    sink.warning(where, f"removal of {p!r}: class {name} does not have it")
                kept = tuple(p for p in old.phrases if p not in phrases)
                classes[key] = WordClass(name, lang, kept, old.anchor, old.file, old.line)
        own: set[tuple[str, str]] = set()
        for rule in gf.rules:
            key = (lang, rule.name)
            where = f"{gf.display}:{rule.line}"
            if key in own or (key in rules and not gf.overlay):
                sink.error(where, f"rule {rule.name!r} is already defined at {where_rule[key]}")
                continue
            own.add(key)
            rules[key] = rule  # an overlay rule replaces the default rule of that name
            where_rule[key] = where
        for name, line in gf.removals:
            if (lang, name) in rules:
                del rules[(lang, name)]
            else:
                sink.warning(f"{gf.display}:{line}", f"removal of rule {name!r}: no such rule")
    for (lang, _), rule in rules.items():
        where = where_rule[(lang, rule.name)]
        for slot in rule.slots:
            if slot.literal is None and (lang, slot.name) not in classes:
                sink.error(where, f"rule {rule.name!r}: unknown class {slot.name} (define it with 'class')")
        for cname in rule.unless + rule.between + rule.lower:
            if (lang, cname) not in classes:
                sink.error(where, f"rule {rule.name!r}: unknown class {cname} in unless:/between:/lower:")
        anchors = [
            s
            for s in rule.slots
            if not s.optional
            and s.literal is None
            and (lang, s.name) in classes
            and classes[(lang, s.name)].anchor
        ]
        if not anchors:
            sink.error(
                where, f"rule {rule.name!r} needs a required slot of an anchor class ('anchor NAME = ...')"
            )
    graves = []
    for gf in files:
        for g in gf.graves:
            unknown = [c for c in g.markers + g.unless if (g.language, c) not in classes]
            if unknown:
                sink.error(
                    f"{gf.display}:{g.line}", f"grave {g.category}: unknown class {', '.join(unknown)}"
                )
            else:
                graves.append(g)
    return Grammar(tuple(classes.values()), tuple(rules.values()), tuple(graves))
