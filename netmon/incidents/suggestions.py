"""The library learns from the DSL: overlay changes suggested by false alarms, and reported misses.

- :func:`proposals` offers, for each library phrase that fired on an incident, an exception phrase (the
  matched words with a few words of their context, as an ``unless:`` term) and the phrase's removal.
- :func:`apply_change` writes an approved change into the school's overlay directory, in the console's
  own file ``<overlay>/<lang>/console-<category>.txt`` (one category per file, as the format requires):
  an exception becomes an override line (the phrase's severity and options, its ``unless:`` list plus
  the new term), a removal a ``-phrase`` line. The new overlay is first loaded from a scratch copy with
  :func:`netmon.scan.library.load_library`; a ``ConfigError``, or a change that would not take effect
  (the phrase still fires on the exception's own words, or another overlay file overrides the same
  phrase), refuses it with :class:`SuggestionError` and leaves the overlay untouched. The file is then
  replaced atomically (temporary file + rename), so the proxy's library watcher never reads half a file.
- :func:`write_misses` writes the misses DSLs reported as ``<overlay>/eval/console-misses.jsonl``, the
  labelled JSONL that ``netmon library eval`` reads (the loader ignores the ``eval/`` directory).

A change may be scoped (:func:`scope_choices`): to the site the false alarm fired on (its verified host
and subdomains) or to that page (the host and URL path), written as a host-scoped overlay line
(``phrase | on: HOST; unless: WORDS`` or ``-phrase | on: HOST``, docs/library-format.md). A scope only
quiets page bodies, so it is offered only for a phrase that fired on what a site sent, never on what the
pupil typed. The suggestion row keeps the scope in its ``scope`` column and the host the false alarm
fired on in ``host`` (``suggestion_scope.stored``, ``scope_of``, ``fired_on``). The host the false alarm
fired on is written as a comment above the line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from netmon.errors import ConfigError, NetmonError
from netmon.incidents.suggestion_scope import scope_choices
from netmon.scan.library import CATEGORIES_FILE, Library, load_library
from netmon.scan.library_files import LANGUAGE, Entry
from netmon.scan.matching import Matcher, phrase_variants
from netmon.scan.normalise import normalise
from netmon.scan.scopes import Quieting
from netmon.scan.site_scope import check_scope, split_scope

CONSOLE_PREFIX = "console-"
HEADER = (
    "# netmon console: written by the staff console from approved suggestions (false alarms a DSL\n"
    "# netmon console: reported, approved by a network admin). The console rewrites this file on each\n"
    "# netmon console: approval; keep your own changes in another file of the overlay.\n"
)
MISSES_FILE = Path("eval") / "console-misses.jsonl"
EXCEPTION_MAX = 200
_MARK = re.compile(r"\[\[(.+?)\]\]")
_RUNS = re.compile(r"(.)\1+")
_ON = re.compile(r"(?:^|;)\s*on\s*:\s*([^;]*)", re.IGNORECASE)
_UNLESS = re.compile(r"(?:^|;)\s*unless\s*:\s*([^;]*)", re.IGNORECASE)
_write_lock = threading.Lock()


class SuggestionError(NetmonError):
    """A suggested change that cannot be made (the message says why and what to do)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One overlay change: ``kind`` exception (with ``exception``) or removal of ``phrase``."""

    kind: str
    category: str
    phrase: str
    exception: str = ""
    comment: str = ""  # one line written above the change (incident, host, who approved)
    scope: str = ""  # "" everywhere; "host" or "host/path": a host-scoped line (page bodies only)


@dataclass(frozen=True, slots=True)
class Proposal:
    """What the console offers for one phrase that fired on a false alarm."""

    phrase: str
    category: str
    language: str
    severity: int
    library_file: str
    line: int
    exception: str  # suggested exception phrase ("" when no context could be found)
    scopable: bool = False  # fired only on what a site sent (page bodies): a site or page scope is offered


# --------------------------------------------------------------------------------------------------
# Proposing


def find_entry(library: Library, category: str, phrase: str) -> Entry | None:
    key = (category, normalise(phrase))
    return next((e for e in library.entries if e.key == key), None)


def exception_context(excerpt: str, matched: str, before: int = 1, after: int = 2) -> str:
    """The marked match of ``excerpt`` closest to ``matched``, with up to ``before``/``after`` whole
    words around it, normalised (so it holds no ``,``, ``;`` or ``|``); "" when nothing is marked."""
    target = normalise(matched)
    best: tuple[str, re.Match[str]] | None = None
    for piece in excerpt.split(" … "):
        for mark in _MARK.finditer(piece):
            if best is None or (target and normalise(mark.group(1)) == target):
                best = (piece, mark)
    if best is None:
        return ""
    piece, mark = best
    head = _MARK.sub(r"\1", piece[: mark.start()]).split()
    tail = _MARK.sub(r"\1", piece[mark.end() :]).split()
    if head and head[0].startswith("…"):
        head = head[1:]  # the excerpt window may have cut this word
    if tail and tail[-1].endswith("…"):
        tail = tail[:-1]
    head = [w for w in head if normalise(w)][-before:] if before else []
    tail = [w for w in tail if normalise(w)][:after]
    return normalise(" ".join([*head, mark.group(1), *tail]))[:EXCEPTION_MAX].strip()


def covers(entry: Entry, exception: str) -> bool:
    """Whether ``exception`` holds the phrase (so it can overlap a hit and cancel it)."""
    text = normalise(exception)
    for variant in phrase_variants(entry.normalised):
        if entry.embedded and variant in text:
            return True
        if f" {variant} " in f" {text} " or f" {_RUNS.sub(r'\1', variant)} " in f" {_RUNS.sub(r'\1', text)} ":
            return True
    return False


def proposals(incident: Any, library: Library) -> list[Proposal]:
    """One proposal per library phrase (not grammar rule) that fired on ``incident`` and is still in
    ``library``, most severe first."""
    out: dict[tuple[str, str], Proposal] = {}
    for e in incident.explanation or []:
        phrase, category = str(e.get("phrase") or ""), str(e.get("category") or "")
        entry = find_entry(library, category, phrase) if phrase and not phrase.startswith("rule ") else None
        if entry is None or entry.key in out:
            continue
        context = exception_context(incident.excerpt or "", str(e.get("matched_text") or phrase))
        sources = {
            str(x.get("source") or "") for x in incident.explanation
            if x.get("category") == category and normalise(str(x.get("phrase") or "")) == entry.normalised
        }  # fmt: skip
        out[entry.key] = Proposal(
            entry.phrase, entry.category, entry.language, entry.severity, entry.file, entry.line,
            context if context and covers(entry, context) else "",
            scopable=sources == {"page"} and bool(scope_choices(incident)),
        )  # fmt: skip
    return sorted(out.values(), key=lambda p: (-p.severity, p.phrase))


def check_exception(entry: Entry, exception: str) -> str:
    """The exception as it will be written, or SuggestionError saying what is wrong with it."""
    text = normalise(exception)[:EXCEPTION_MAX].strip()
    if not text:
        raise SuggestionError("the exception phrase is empty (it needs letters or digits)")
    if not covers(entry, text):
        raise SuggestionError(
            f"the exception {text!r} does not contain the phrase {entry.phrase!r}: an exception only "
            "cancels a match it overlaps, so keep the matched words in it"
        )
    return text


# --------------------------------------------------------------------------------------------------
# Writing the overlay


def console_file(overlay: Path, language: str, category: str) -> Path:
    return Path(overlay) / language / f"{CONSOLE_PREFIX}{category}.txt"


def _line(entry: Entry, unless: tuple[str, ...]) -> str:
    options = ["embedded"] if entry.embedded else []
    if unless:
        options.append("unless: " + ", ".join(unless))
    if entry.with_:
        options.append("with: " + ", ".join(entry.with_))
    if entry.within is not None:
        options.append(f"within: {entry.within}")
    if entry.note:
        options.append(f"note: {entry.note}")
    return f"{entry.phrase} | {entry.severity}" + (" | " + "; ".join(options) if options else "")


def _scoped_line(entry: Entry, scope: str, unless: tuple[str, ...]) -> str:
    if not unless:
        return f"-{entry.phrase} | on: {scope}"
    return f"{entry.phrase} | on: {scope}; unless: " + ", ".join(unless)


def _unless_of(line: str) -> tuple[str, ...]:
    found = _UNLESS.search(line.split("|", 1)[1] if "|" in line else "")
    return tuple(t.strip() for t in found.group(1).split(",") if t.strip()) if found else ()


Key = tuple[str, str, str]  # ("+"|"-", normalised phrase, scope or "")


def _blocks(path: Path) -> dict[Key, list[str]]:
    """The console file's changes: ("+"|"-", normalised phrase, scope) -> its comment lines and its line."""
    blocks: dict[Key, list[str]] = {}
    if not path.is_file():
        return blocks
    comments: list[str] = []
    for raw in path.read_text(encoding="utf-8-sig").splitlines():
        line = raw.strip()
        if not line or line.startswith(("# netmon console:", "@category", "@language")):
            comments = [] if not line else comments
            continue
        if line.startswith("#"):
            comments.append(line)
            continue
        removal = line.startswith("-")
        head, _, rest = line.partition("|")
        on = _ON.search(rest.split("|", 1)[0])
        scope = on.group(1).strip() if on else ""
        phrase = head[1:] if removal else head
        blocks[("-" if removal else "+", normalise(phrase.split(" #")[0]), scope)] = [*comments, line]
        comments = []
    return blocks


def _render(language: str, category: str, blocks: dict[Key, list[str]]) -> str:
    body = "\n".join("\n".join(lines) for lines in blocks.values())
    return f"{HEADER}@category {category}\n@language {language}\n\n{body}\n"


def _copy_overlay(overlay: Path, scratch: Path) -> None:
    if (overlay / CATEGORIES_FILE).is_file():
        shutil.copy2(overlay / CATEGORIES_FILE, scratch / CATEGORIES_FILE)
    for sub in overlay.iterdir():
        if sub.is_dir() and LANGUAGE.match(sub.name):
            shutil.copytree(sub, scratch / sub.name, ignore=shutil.ignore_patterns(".*"))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def apply_change(root: Path, overlay: Path | None, change: Change) -> Path:
    """Write ``change`` into the overlay's console file after checking that the overlay still loads and
    that the change takes effect; returns the file written. Raises SuggestionError (nothing written)."""
    if overlay is None or not Path(overlay).is_dir():
        raise SuggestionError(
            "no overlay directory: start the console with --overlay DIR (or NETMON_LIBRARY_OVERLAY), "
            "the same directory the proxy's netmon_library_overlay names"
        )
    overlay = Path(overlay)
    with _write_lock:
        try:
            current = load_library(root, overlay)
        except ConfigError as exc:
            raise SuggestionError(f"the library does not load as it is, fix it first: {exc}") from None
        entry = find_entry(current, change.category, change.phrase)
        if entry is None:
            raise SuggestionError(
                f"{change.phrase!r} is no longer a phrase of {change.category} (changed or removed since)"
            )
        path = console_file(overlay, entry.language, entry.category)
        own = "overlay:" + path.relative_to(overlay).as_posix()
        if change.scope:
            content = _scoped_content(entry, path, change)
            _check(root, overlay, path, content, entry, change)
            _atomic_write(path, content)
            return path
        if entry.file.startswith("overlay:") and entry.file != own:
            raise SuggestionError(
                f"refused: {entry.phrase!r} is also defined in the school's {entry.file}:{entry.line}; "
                "change that line by hand (the console only writes its own file)"
            )
        blocks = _blocks(path)
        comment = [f"# {change.comment}"] if change.comment else []
        if change.kind == "exception":
            text = check_exception(entry, change.exception)
            if text in (normalise(u) for u in entry.unless):
                raise SuggestionError(f"{text!r} is already an exception of {entry.phrase!r}")
            blocks.pop(("-", entry.normalised, ""), None)
            blocks[("+", entry.normalised, "")] = [*comment, _line(entry, (*entry.unless, text))]
        elif change.kind == "removal":
            blocks.pop(("+", entry.normalised, ""), None)
            blocks[("-", entry.normalised, "")] = [*comment, f"-{entry.phrase}"]
        else:
            raise SuggestionError(f"unknown kind of change {change.kind!r}")
        content = _render(entry.language, entry.category, blocks)
        _check(root, overlay, path, content, entry, change)
        _atomic_write(path, content)
        return path


def _scoped_content(entry: Entry, path: Path, change: Change) -> str:
    """The console file with ``change`` written as a host-scoped line (merged with one of the same
    phrase and scope)."""
    scope, problem = check_scope(change.scope)
    if scope is None:
        raise SuggestionError(f"refused: the scope {change.scope!r} is not a site or page: {problem}")
    blocks = _blocks(path)
    comment = [f"# {change.comment}"] if change.comment else []
    if change.kind == "exception":
        text = check_exception(entry, change.exception)
        if text in (normalise(u) for u in entry.unless):
            raise SuggestionError(f"{text!r} is already an exception of {entry.phrase!r} everywhere")
        if ("-", entry.normalised, scope) in blocks:
            raise SuggestionError(f"refused: {entry.phrase!r} is already removed on {scope}")
        before = blocks.get(("+", entry.normalised, scope))
        terms = _unless_of(before[-1]) if before else ()
        if text in (normalise(t) for t in terms):
            raise SuggestionError(f"{text!r} is already an exception of {entry.phrase!r} on {scope}")
        blocks[("+", entry.normalised, scope)] = [*(before[:-1] if before else ()), *comment,
                                                  _scoped_line(entry, scope, (*terms, text))]  # fmt: skip
    elif change.kind == "removal":
        blocks.pop(("+", entry.normalised, scope), None)
        blocks[("-", entry.normalised, scope)] = [*comment, _scoped_line(entry, scope, ())]
    else:
        raise SuggestionError(f"unknown kind of change {change.kind!r}")
    return _render(entry.language, entry.category, blocks)


def _check_scoped(library: Library, entry: Entry, change: Change) -> None:
    """A scoped change must load as a scoped line and quiet the phrase on its own scope."""
    host, path = split_scope(change.scope)
    quieting = Quieting(library)
    lines = [line for line in quieting.lines_for(host, path or "/") if line.key == entry.key]
    if find_entry(library, entry.category, entry.phrase) is None or not lines:
        raise SuggestionError(f"refused: the scoped line for {entry.phrase!r} would not take effect")
    if change.kind == "exception":
        hits = Matcher.compile(library).scan(change.exception, grammar=False)
        left = quieting.quiet(hits, change.exception, host, path or "/")
        if any(h.category == entry.category and normalise(h.phrase) == entry.normalised for h in left):
            raise SuggestionError(
                f"refused: {entry.phrase!r} would still fire on {change.exception!r} on {change.scope}"
            )


def _check(root: Path, overlay: Path, path: Path, content: str, entry: Entry, change: Change) -> None:
    """Load library + the overlay as it would be from a scratch copy; SuggestionError if it fails."""
    with tempfile.TemporaryDirectory(prefix="netmon-overlay-") as tmp:
        scratch = Path(tmp)
        _copy_overlay(overlay, scratch)
        target = scratch / path.relative_to(overlay)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        try:
            library = load_library(root, scratch)
        except ConfigError as exc:
            raise SuggestionError(
                f"refused, the overlay would not load: {str(exc).replace(str(scratch), str(overlay))}"
            ) from None
    if change.scope:
        _check_scoped(library, entry, change)
        return
    after = find_entry(library, entry.category, entry.phrase)
    own = "overlay:" + path.relative_to(overlay).as_posix()
    if change.kind == "removal":
        if after is not None:
            raise SuggestionError(f"refused: {entry.phrase!r} would still be in the library ({after.file})")
        return
    if after is None or after.file != own:
        where = after.file if after is not None else "nowhere"
        raise SuggestionError(
            f"refused: {entry.phrase!r} is also defined in {where}:{after.line if after else 0}, which "
            "wins over the console's file; add the exception there by hand"
        )
    hits = Matcher.compile(library).scan(change.exception)
    if any(h.category == entry.category and normalise(h.phrase) == entry.normalised for h in hits):
        raise SuggestionError(f"refused: {entry.phrase!r} would still fire on {change.exception!r}")


def with_comment(change: Change, comment: str) -> Change:
    return replace(change, comment=" ".join(comment.split())[:300])


# --------------------------------------------------------------------------------------------------
# Misses: a local evaluation set


def miss_record(miss: Any) -> dict[str, Any]:
    """One line of the evaluation set, in the JSONL form ``netmon library eval`` reads."""
    record: dict[str, Any] = {
        "id": f"console-miss-{miss.id}",
        "text": miss.text,
        "expect": miss.category,
        "min_severity": miss.min_severity,
    }
    if miss.language:
        record["lang"] = miss.language
    return record


def write_misses(overlay: Path, misses: Iterable[Any]) -> Path:
    """Rewrite ``<overlay>/eval/console-misses.jsonl`` (atomically) from every reported miss."""
    path = Path(overlay) / MISSES_FILE
    lines = [json.dumps(miss_record(m), ensure_ascii=False) for m in misses]
    with _write_lock:
        _atomic_write(path, "".join(line + "\n" for line in lines))
    return path
