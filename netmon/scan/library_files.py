"""One library file: ``Category``, ``Entry`` and ``Scoped`` records; parsing ``categories.txt`` and category
files.

``netmon.scan.library`` merges what these return into the ``Library``; ``Problem`` and ``_Sink`` collect
errors and warnings (``FILE:LINE: error|warning: message``) for both. A ``Scoped`` line of the school's
overlay (``-phrase | on: HOST`` or ``phrase | on: HOST; unless: ...``) quiets a phrase on some sites' pages
only; ``netmon.scan.scopes`` applies it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from netmon.errors import ConfigError
from netmon.scan.normalise import normalise
from netmon.scan.site_scope import Scoped, check_scope

CATEGORIES_FILE = "categories.txt"

_CATEGORY_ID = re.compile(r"^[a-z][a-z0-9_]*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_OPTION_NAMES = ("embedded", "unless", "with", "within", "note")
#: A host-scoped line: its second field holds an ``on:`` option (and never starts with a severity).
_SCOPED_LINE = re.compile(r"(?:^|;)\s*on\s*:", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    description: str
    file: str = CATEGORIES_FILE
    line: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One phrase of the library, with where it was written."""

    phrase: str  # as written in the file
    normalised: str  # normalise(phrase)
    category: str
    language: str
    severity: int
    file: str  # relative to the library root ("en/self_harm.txt"), or "overlay:en/local.txt"
    line: int
    embedded: bool = False
    unless: tuple[str, ...] = ()  # exception phrases, as written
    with_: tuple[str, ...] = ()  # co-occurrence phrases, as written
    within: int | None = None  # characters of normalised text, for with_
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.category, self.normalised


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "library/en/x.txt:12"
    message: str
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}"


# --------------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Parsed:
    """What one category file holds, before the layers are merged."""

    display: str
    rel: str
    category: str | None = None
    category_line: int = 0
    language: str | None = None
    entries: list[Entry] = field(default_factory=list)
    removals: list[tuple[str, str, int]] = field(default_factory=list)  # (phrase, normalised, line)
    scoped: list[Scoped] = field(default_factory=list)  # host-scoped lines (overlay only)
    about: list[str] = field(default_factory=list)


class _Sink:
    """Collects problems; ``strict`` raises ConfigError at the first error (load_library)."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.problems: list[Problem] = []

    def error(self, where: str, message: str) -> None:
        if self.strict:
            raise ConfigError(where, message)
        self.problems.append(Problem(where, message, "error"))

    def warning(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, "warning"))


def _lines(path: Path, display: str, sink: _Sink) -> Iterator[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        sink.error(display, f"cannot read: {exc.strerror or exc}")
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        sink.error(f"{display}:{bad_line}", "not valid UTF-8 (save the file as UTF-8)")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", line).strip()
        if line:
            yield number, line


def _read_categories(path: Path, display: str, sink: _Sink, known: dict[str, Category]) -> None:
    for number, line in _lines(path, display, sink):
        where = f"{display}:{number}"
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[0] or not parts[1]:
            sink.error(where, "expected 'id | display name | description'")
            continue
        cid, name, description = parts
        if not _CATEGORY_ID.match(cid):
            sink.error(where, f"category id must be lower-case letters, digits and '_' (got {cid!r})")
            continue
        if cid in known:
            first = known[cid]
            sink.error(where, f"category {cid!r} is already defined at {first.file}:{first.line}")
            continue
        known[cid] = Category(cid, name, description, display, number)


def _split_terms(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(",") if t.strip())


def _parse_entry(line: str, where: str, parsed: _Parsed, sink: _Sink) -> Entry | None:
    parts = [p.strip() for p in line.split("|")]
    if len(parts) > 3:
        sink.error(
            where,
            "too many '|' fields (expected 'phrase | severity | options'; '|' may not appear in a phrase)",
        )
        return None
    if len(parts) < 2:
        sink.error(where, "missing severity (expected 'phrase | severity')")
        return None
    phrase, severity_text = parts[0], parts[1]
    if not phrase:
        sink.error(where, "empty phrase")
        return None
    if ";" in phrase:
        sink.error(where, "';' may not appear in a phrase")
        return None
    try:
        severity = int(severity_text)
    except ValueError:
        sink.error(where, f"severity must be a whole number 1-5 (got {severity_text!r})")
        return None
    if not 1 <= severity <= 5:
        sink.error(where, f"severity must be 1-5 (got {severity})")
        return None
    normalised = normalise(phrase)
    if not normalised:
        sink.error(where, f"phrase {phrase!r} normalises to nothing (it has no letters or digits)")
        return None
    embedded = False
    unless: tuple[str, ...] = ()
    with_: tuple[str, ...] = ()
    within: int | None = None
    note = ""
    seen: set[str] = set()
    options = parts[2] if len(parts) == 3 else ""
    note_at = re.search(r"(?:^|;)\s*note\s*:", options, re.IGNORECASE)
    if note_at:  # note: is free text to the end of the line (it may hold ';')
        note = options[note_at.end() :].strip()
        if not note:
            sink.error(where, "option 'note:' needs text")
            return None
        options = options[: note_at.start()]
    for option in (o.strip() for o in options.split(";")):
        if not option:
            continue
        name, _, value = option.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "on":
            sink.error(
                where,
                "a line scoped with 'on:' only quiets a phrase on those sites: write 'phrase | on: HOST; "
                "unless: WORDS' or '-phrase | on: HOST', without a severity",
            )
            return None
        if name not in _OPTION_NAMES:
            sink.error(where, f"unknown option {name!r} (known: {', '.join(_OPTION_NAMES)})")
            return None
        if name in seen:
            sink.error(where, f"option {name!r} given twice")
            return None
        seen.add(name)
        if name == "embedded":
            if value:
                sink.error(where, "option 'embedded' takes no value")
                return None
            embedded = True
        elif name in ("unless", "with"):
            terms = _split_terms(value)
            if not terms:
                sink.error(where, f"option '{name}:' needs at least one phrase")
                return None
            for term in terms:
                if not normalise(term):
                    sink.error(where, f"{name}: phrase {term!r} normalises to nothing")
                    return None
            if name == "unless":
                unless = terms
            else:
                with_ = terms
        elif name == "within":
            if not value.isdigit() or int(value) < 1:
                sink.error(where, f"within: must be a whole number of characters >= 1 (got {value!r})")
                return None
            within = int(value)
    if within is not None and not with_:
        sink.error(where, "within: needs a with: list on the same line")
        return None
    assert parsed.category is not None and parsed.language is not None
    return Entry(
        phrase=phrase,
        normalised=normalised,
        category=parsed.category,
        language=parsed.language,
        severity=severity,
        file=parsed.rel,
        line=int(where.rsplit(":", 1)[1]),
        embedded=embedded,
        unless=unless,
        with_=with_,
        within=within,
        note=note,
    )


def _parse_scoped(
    phrase: str, options: str, removal: bool, where: str, parsed: _Parsed, overlay: bool, sink: _Sink
) -> Scoped | None:
    """``-phrase | on: HOST, ...`` or ``phrase | on: HOST, ...; unless: a, b`` (overlay only)."""
    if not overlay:
        sink.error(where, "a host-scoped 'on:' line belongs in the school's overlay, not the library")
        return None
    if not phrase or ";" in phrase or "|" in options:
        sink.error(where, "a host-scoped line is 'phrase | on: HOST; unless: WORDS' or '-phrase | on: HOST'")
        return None
    normalised = normalise(phrase)
    if not normalised:
        sink.error(where, f"phrase {phrase!r} normalises to nothing")
        return None
    values: dict[str, str] = {}
    for option in (o.strip() for o in options.split(";")):
        if not option:
            continue
        name, colon, value = option.partition(":")
        name = name.strip().lower()
        allowed = ("on",) if removal else ("on", "unless")
        if not colon or name not in allowed:
            what = (
                "a scoped removal takes only 'on:'"
                if removal
                else "a scoped line takes only 'on:' and 'unless:'"
            )
            sink.error(
                where,
                f"{what} (got {option!r}); severity and other options are changed everywhere or not at all",
            )
            return None
        if name in values:
            sink.error(where, f"option {name!r} given twice")
            return None
        values[name] = value.strip()
    scopes: list[str] = []
    for value in _split_terms(values.get("on", "")):
        scope, problem = check_scope(value)
        if scope is None:
            sink.error(where, f"on: {problem}")
            return None
        scopes.append(scope)
    if not scopes:
        sink.error(where, "on: needs at least one site (example.org) or page (example.org/path)")
        return None
    unless = _split_terms(values.get("unless", ""))
    if not removal:
        if not unless:
            sink.error(
                where,
                "a scoped line needs 'unless:' words (or write '-phrase | on: HOST' to remove it there)",
            )
            return None
        for term in unless:
            if not normalise(term):
                sink.error(where, f"unless: phrase {term!r} normalises to nothing")
                return None
    assert parsed.category is not None and parsed.language is not None
    return Scoped(
        phrase, normalised, parsed.category, parsed.language, tuple(dict.fromkeys(scopes)), unless,
        parsed.rel, int(where.rsplit(":", 1)[1]),
    )  # fmt: skip


def _parse_file(
    path: Path, display: str, rel: str, overlay: bool, categories: dict[str, Category], sink: _Sink
) -> _Parsed:
    parsed = _Parsed(display=display, rel=rel)
    header_ok = True
    before = len(sink.problems)
    for number, line in _lines(path, display, sink):
        where = f"{display}:{number}"
        if line.startswith("@"):
            name, _, value = line[1:].partition(" ")
            value = value.strip()
            if name == "category":
                if parsed.category is not None:
                    sink.error(where, "a second @category line (one category per file)")
                elif value not in categories:
                    sink.error(where, f"unknown category {value!r} (add it to {CATEGORIES_FILE} first)")
                    header_ok = False
                    parsed.category = value
                else:
                    parsed.category, parsed.category_line = value, number
            elif name == "language":
                if parsed.language is not None:
                    sink.error(where, "a second @language line (one language per file)")
                elif not LANGUAGE.match(value):
                    sink.error(where, f"@language must be a language tag such as en or cy (got {value!r})")
                    header_ok = False
                    parsed.language = value
                else:
                    parsed.language = value
            elif name == "about":
                parsed.about.append(value)
            else:
                sink.error(where, f"unknown directive @{name} (known: @category, @language, @about)")
            continue
        if parsed.category is None or parsed.language is None:
            missing = "@category" if parsed.category is None else "@language"
            sink.error(where, f"phrase before the {missing} line (start the file with @category, @language)")
            header_ok = False
            parsed.category = parsed.category or "?"
            parsed.language = parsed.language or "?"
            continue
        if not header_ok:
            continue  # the header error is reported once; its phrases cannot be placed
        head, bar, rest = line.partition("|")
        if bar and _SCOPED_LINE.search(rest.split("|", 1)[0]) is not None:
            removal = head.startswith("-")
            scoped = _parse_scoped(
                (head[1:] if removal else head).strip(), rest, removal, where, parsed, overlay, sink
            )
            if scoped is not None:
                parsed.scoped.append(scoped)
            continue
        if line.startswith("-"):
            phrase = line[1:].strip()
            if not overlay:
                sink.error(where, "a '-phrase' removal line belongs in the school's overlay, not the library")
            elif "|" in phrase or not phrase:
                sink.error(where, "a removal line is '-phrase' alone (no severity or options)")
            elif not normalise(phrase):
                sink.error(where, f"phrase {phrase!r} normalises to nothing")
            else:
                parsed.removals.append((phrase, normalise(phrase), number))
            continue
        entry = _parse_entry(line, where, parsed, sink)
        if entry is not None:
            parsed.entries.append(entry)
    if len(sink.problems) > before and sink.problems[-1].message.startswith(
        ("not valid UTF-8", "cannot read")
    ):
        return parsed  # unreadable: the one error says so
    if parsed.category is None:
        sink.error(f"{display}:1", "missing @category line")
    elif parsed.language is None:
        sink.error(f"{display}:1", "missing @language line")
    elif header_ok and Path(rel).stem != parsed.category:
        sink.warning(
            f"{display}:{parsed.category_line}",
            f"file name {Path(rel).name!r} differs from @category {parsed.category!r}",
        )
    return parsed
