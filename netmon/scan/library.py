"""The phrase library: parsing, validation and the immutable ``Library`` (docs/library-format.md).

``load_library(root, overlay)`` returns a ``Library`` or raises ``ConfigError`` naming the first error
(``library/en/x.txt:12: severity must be 1-5 (got 7)``). ``check_paths(paths)`` collects every problem,
errors and warnings, with counts per category and language, for ``netmon library check``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from netmon.scan.grammar import GRAMMAR_SUFFIX, Grammar, GrammarFile, merge_grammar, parse_grammar
from netmon.scan.library_files import (
    CATEGORIES_FILE,
    LANGUAGE,
    Category,
    Entry,
    Problem,
    Scoped,
    _lines,
    _parse_file,
    _Parsed,
    _read_categories,
    _Sink,
)
from netmon.scan.normalise import NORMALISER_VERSION

__all__ = [
    "CATEGORIES_FILE",
    "Category",
    "CheckReport",
    "Entry",
    "Library",
    "Problem",
    "Scoped",
    "check_paths",
    "load_library",
]

OVERLAY_PREFIX = "overlay:"


@dataclass(frozen=True, slots=True)
class Library:
    """An immutable, validated library (default files plus the school's overlay)."""

    root: str
    overlay: str | None
    categories: tuple[Category, ...]
    entries: tuple[Entry, ...]
    about: tuple[tuple[str, str], ...] = ()  # (file, text) of the @about lines
    fingerprint: str = ""
    grammar: Grammar = Grammar()  # the intent grammar of the *.grammar files (netmon.scan.grammar)
    scoped: tuple[Scoped, ...] = ()  # the overlay's host-scoped lines (netmon.scan.scopes applies them)

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of phrases per (category, language)."""
        return dict(Counter((e.category, e.language) for e in self.entries))

    def __len__(self) -> int:
        return len(self.entries)


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


def _category_files(root: Path, pattern: str = "*.txt") -> list[Path]:
    """``<root>/<lang>/*.txt`` (or ``pattern``): one level of language directories."""
    files: list[Path] = []
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and LANGUAGE.match(sub.name):
            files.extend(sorted(p for p in sub.glob(pattern) if p.is_file()))
    return files


def _grammar_files(
    paths: list[Path], root: Path, overlay: bool, categories: dict[str, Category], sink: _Sink
) -> list[GrammarFile]:
    out = []
    for p in paths:
        inside = p.is_relative_to(root)
        display = _display(root, p) if inside else str(p)
        rel = p.relative_to(root).as_posix() if inside else p.name
        rel = OVERLAY_PREFIX + rel if overlay else rel
        lines = _lines(p, display, sink)
        out.append(parse_grammar(lines, display, rel, overlay, categories, sink, LANGUAGE))
    return out


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
    files = [p for p in only if p.suffix != GRAMMAR_SUFFIX] if only is not None else _category_files(root)
    grammar_paths = (
        [p for p in only if p.suffix == GRAMMAR_SUFFIX]
        if only is not None
        else _category_files(root, "*" + GRAMMAR_SUFFIX)
    )
    grammars = _grammar_files(grammar_paths, root, False, categories, sink)
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
    scoped: list[Scoped] = []
    _merge_layer(layer, sink, merged, None)
    n_files = len(files) + len(grammar_paths)
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
        scoped = _scoped_lines(overlay_layer, merged, sink)
        about += [(parsed.rel, text) for parsed in overlay_layer for text in parsed.about]
        overlay_grammar = _category_files(overlay, "*" + GRAMMAR_SUFFIX)
        n_files += len(overlay_grammar)
        grammars += _grammar_files(overlay_grammar, overlay, True, categories, sink)
    grammar = merge_grammar(grammars, sink)
    about += [(g.rel, text) for g in grammars for text in g.about]
    entries = tuple(merged.values())
    library = Library(
        root=str(root),
        overlay=str(overlay) if overlay is not None else None,
        categories=tuple(categories.values()),
        entries=entries,
        about=tuple(about),
        fingerprint=_fingerprint(categories.values(), entries, grammar, scoped),
        grammar=grammar,
        scoped=tuple(scoped),
    )
    return library, n_files


def _scoped_lines(layer: list[_Parsed], merged: dict[tuple[str, str], Entry], sink: _Sink) -> list[Scoped]:
    """The overlay's host-scoped lines; one naming a phrase the merged library does not have does nothing
    (a warning, as a removal of a missing phrase is)."""
    out: list[Scoped] = []
    for parsed in layer:
        for scoped in parsed.scoped:
            if scoped.key not in merged:
                sink.warning(
                    f"{parsed.display}:{scoped.line}",
                    f"scoped line for {scoped.phrase!r}: no such phrase in {scoped.category} of the library",
                )
                continue
            out.append(scoped)
    return out


def _fingerprint(
    categories: Iterable[Category], entries: Iterable[Entry], grammar: Grammar, scoped: Iterable[Scoped] = ()
) -> str:
    h = hashlib.sha256(f"normaliser {NORMALISER_VERSION}\n".encode())
    h.update(repr(grammar).encode())
    for s in scoped:
        h.update(f"S|{s!r}\n".encode())
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
