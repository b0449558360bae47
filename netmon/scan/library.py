"""The phrase library: parsing, validation and the immutable ``Library`` (docs/library-format.md).

``load_library(root, overlay)`` returns a ``Library`` or raises ``ConfigError`` naming the first error
(``library/en/x.txt:12: severity must be 1-5 (got 7)``). ``check_paths(paths)`` collects every problem,
errors and warnings, with counts per category and language, for ``netmon library check``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from netmon.errors import ConfigError
from netmon.scan.normalise import NORMALISER_VERSION, normalise

CATEGORIES_FILE = "categories.txt"
OVERLAY_PREFIX = "overlay:"

_CATEGORY_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_OPTION_NAMES = ("embedded", "unless", "with", "within", "note")


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
class Library:
    """An immutable, validated library (default files plus the school's overlay)."""

    root: str
    overlay: str | None
    categories: tuple[Category, ...]
    entries: tuple[Entry, ...]
    about: tuple[tuple[str, str], ...] = ()  # (file, text) of the @about lines
    fingerprint: str = ""

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of phrases per (category, language)."""
        return dict(Counter((e.category, e.language) for e in self.entries))

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "library/en/x.txt:12"
    message: str
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}"


@dataclass(frozen=True, slots=True)
class CheckReport:
    problems: tuple[Problem, ...]
    counts: tuple[tuple[str, str, int], ...]  # (category, language, phrases), sorted
    categories: tuple[str, ...] = ()  # every category id known to the checked libraries
    files: int = 0

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.level == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.level == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


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
                elif not _LANGUAGE.match(value):
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


def _category_files(root: Path) -> list[Path]:
    """``<root>/<lang>/*.txt``: one level of language directories."""
    files: list[Path] = []
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and _LANGUAGE.match(sub.name):
            files.extend(sorted(p for p in sub.glob("*.txt") if p.is_file()))
    return files


def _display(root: Path, path: Path) -> str:
    return str(root / path.relative_to(root))


def _merge_layer(
    layer: list[_Parsed],
    sink: _Sink,
    merged: dict[tuple[str, str], Entry],
    defaults: dict[tuple[str, str], Entry] | None,
) -> None:
    """Adds one layer's entries to ``merged``; duplicates within a layer are checked here."""
    own: dict[tuple[str, str], tuple[Entry, str]] = {}
    for parsed in layer:
        for entry in parsed.entries:
            where = f"{parsed.display}:{entry.line}"
            first = own.get(entry.key)
            if first is not None:
                previous, previous_where = first
                if previous.severity != entry.severity:
                    sink.error(
                        where,
                        f"duplicate phrase {entry.phrase!r} in {entry.category} with a different "
                        f"severity ({entry.severity}) from {previous_where} ({previous.severity})",
                    )
                else:
                    sink.warning(
                        where,
                        f"duplicate phrase {entry.phrase!r} in {entry.category} "
                        f"(already at {previous_where})",
                    )
                continue
            own[entry.key] = (entry, where)
            merged[entry.key] = entry  # an overlay entry replaces the default one
    if defaults is None:
        return
    for parsed in layer:
        for phrase, normalised, line in parsed.removals:
            assert parsed.category is not None
            key = (parsed.category, normalised)
            if key in own:
                sink.error(f"{parsed.display}:{line}", f"{phrase!r} is both removed and added in the overlay")
            elif key in merged:
                del merged[key]
            else:
                sink.warning(
                    f"{parsed.display}:{line}",
                    f"removal of {phrase!r}: no such phrase in {parsed.category} of the library",
                )


def _build(
    root: Path, overlay: Path | None, sink: _Sink, only: list[Path] | None = None
) -> tuple[Library | None, int]:
    categories: dict[str, Category] = {}
    cat_path = root / CATEGORIES_FILE
    if not root.is_dir():
        sink.error(str(root), "no such library directory")
        return None, 0
    if not cat_path.is_file():
        sink.error(
            str(cat_path), f"missing {CATEGORIES_FILE} (the category registry: 'id | name | description')"
        )
        return None, 0
    _read_categories(cat_path, _display(root, cat_path), sink, categories)
    if overlay is not None:
        if not overlay.is_dir():
            sink.error(str(overlay), "no such overlay directory")
            return None, 0
        if (overlay / CATEGORIES_FILE).is_file():
            _read_categories(
                overlay / CATEGORIES_FILE, _display(overlay, overlay / CATEGORIES_FILE), sink, categories
            )
    files = only if only is not None else _category_files(root)
    layer = [
        _parse_file(
            p,
            _display(root, p) if p.is_relative_to(root) else str(p),
            p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name,
            False,
            categories,
            sink,
        )
        for p in files
    ]
    merged: dict[tuple[str, str], Entry] = {}
    _merge_layer(layer, sink, merged, None)
    n_files = len(files)
    about = [(parsed.rel, text) for parsed in layer for text in parsed.about]
    if overlay is not None:
        overlay_files = _category_files(overlay)
        n_files += len(overlay_files)
        overlay_layer = [
            _parse_file(
                p,
                _display(overlay, p),
                OVERLAY_PREFIX + p.relative_to(overlay).as_posix(),
                True,
                categories,
                sink,
            )
            for p in overlay_files
        ]
        _merge_layer(overlay_layer, sink, merged, merged)
        about += [(parsed.rel, text) for parsed in overlay_layer for text in parsed.about]
    entries = tuple(merged.values())
    library = Library(
        root=str(root),
        overlay=str(overlay) if overlay is not None else None,
        categories=tuple(categories.values()),
        entries=entries,
        about=tuple(about),
        fingerprint=_fingerprint(categories.values(), entries),
    )
    return library, n_files


def _fingerprint(categories: Iterable[Category], entries: Iterable[Entry]) -> str:
    h = hashlib.sha256(f"normaliser {NORMALISER_VERSION}\n".encode())
    for c in sorted(categories, key=lambda c: c.id):
        h.update(f"C|{c.id}|{c.name}\n".encode())
    for e in sorted(entries, key=lambda e: (e.category, e.normalised, e.file, e.line)):
        h.update(
            repr(
                (
                    e.phrase,
                    e.category,
                    e.language,
                    e.severity,
                    e.embedded,
                    e.unless,
                    e.with_,
                    e.within,
                    e.file,
                    e.line,
                )
            ).encode()
        )
        h.update(b"\n")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# Public API


def load_library(root: Path, overlay: Path | None = None) -> Library:
    """Load and validate the library at ``root`` (plus the school's ``overlay`` directory).

    Raises ``ConfigError(where, message)`` at the first error; warnings do not stop loading.
    """
    library, _ = _build(Path(root), Path(overlay) if overlay is not None else None, _Sink(strict=True))
    assert library is not None
    return library


def _find_root(path: Path) -> Path | None:
    for parent in path.resolve().parents:
        if (parent / CATEGORIES_FILE).is_file():
            return parent
    return None


def check_paths(paths: Iterable[Path], overlay: Path | None = None) -> CheckReport:
    """Check library directories or single category files; every problem is reported.

    A directory holding ``categories.txt`` is a library root (checked with ``overlay`` when given); a
    single ``<lang>/<category>.txt`` file is checked against the ``categories.txt`` above it.
    """
    sink = _Sink(strict=False)
    counts: Counter[tuple[str, str]] = Counter()
    categories: set[str] = set()
    n_files = 0
    for path in (Path(p) for p in paths):
        library: Library | None = None
        if path.is_dir():
            if not (path / CATEGORIES_FILE).is_file() and overlay is None:
                sink.error(
                    str(path),
                    f"no {CATEGORIES_FILE} here: not a library directory (for a school "
                    "overlay use --overlay DIR)",
                )
                continue
            library, n = _build(path, overlay, sink)
        elif path.is_file():
            if path.name == CATEGORIES_FILE:
                library, n = _build(path.parent, None, sink, only=[])
            else:
                root = _find_root(path)
                if root is None:
                    sink.error(str(path), f"no {CATEGORIES_FILE} in any directory above this file")
                    continue
                display_root = path.parent.parent if path.parent.parent.resolve() == root else root
                library, n = _build(display_root, None, sink, only=[path])
        else:
            sink.error(str(path), "no such file or directory")
            continue
        n_files += n
        if library is not None:
            counts.update((e.category, e.language) for e in library.entries)
            categories.update(c.id for c in library.categories)
    ordered = tuple(sorted((c, lang, n) for (c, lang), n in counts.items()))
    return CheckReport(
        problems=tuple(sink.problems), counts=ordered, categories=tuple(sorted(categories)), files=n_files
    )
