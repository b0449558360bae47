"""UT1 blacklists (Université Toulouse 1 Capitole): import the folder a school downloads, look hosts up.

Layout: ``<DIR>/<category>/domains`` (one host per line, subdomains included), ``urls`` (``host/path``
prefixes), ``usage`` (``black`` and/or ``white`` plus aliases) and, in some categories, ``expressions``
(regular expressions over URLs). A category whose usage says ``white`` and not ``black`` is a whitelist
(e.g. ``liste_bu``, ``child``): it is not a block list, so it is counted and left out.

The import streams the files (millions of lines, constant memory) into one SQLite file, by default
``<state dir>/lists/ut1.sqlite``, written beside and renamed into place so a running proxy never sees a
half-built file. Lookups are indexed queries on that file (tens of microseconds), so the proxy needs no
start-up parse and little memory however large the list.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import tarfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netmon.config.paths import state_dir
from netmon.errors import ConfigError
from netmon.hosts import normalise_host
from netmon.lists.urllists import UrlEntry, host_suffixes, url_key

log = logging.getLogger(__name__)

#: Severity given to UT1 categories (UT1 has none); others get DEFAULT_SEVERITY. ``--severity`` overrides.
CATEGORY_SEVERITY = {
    "adult": 3,
    "mixed_adult": 2,
    "agressif": 3,
    "aggressive": 3,
    "drogue": 3,
    "drugs": 3,
    "dangerous_material": 3,
    "phishing": 3,
    "malware": 3,
    "sect": 3,
    "gambling": 2,
    "hacking": 2,
    "dating": 2,
    "lingerie": 2,
    "vpn": 2,
    "redirector": 2,
    "chat": 1,
    "social_networks": 1,
    "press": 1,
}
DEFAULT_SEVERITY = 2
BATCH = 50_000
MAX_PATH_PREFIXES = 8
_HOSTCHARS = re.compile(r"^[a-z0-9._\-\[\]:*]+$")


def default_path() -> Path:
    return state_dir() / "lists" / "ut1.sqlite"


@dataclass(slots=True)
class CategoryReport:
    name: str
    usage: tuple[str, ...]
    whitelist: bool
    severity: int
    domains: int = 0
    urls: int = 0
    expressions: int = 0
    bad_lines: int = 0


@dataclass(slots=True)
class ImportReport:
    source: str
    output: str
    categories: list[CategoryReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def imported(self) -> list[CategoryReport]:
        return [c for c in self.categories if not c.whitelist]

    @property
    def skipped_whitelists(self) -> list[CategoryReport]:
        return [c for c in self.categories if c.whitelist]


LIST_FILES = ("domains", "urls", "expressions", "very_restrictive_expression")


def _text_lines(fh: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(fh, 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _decoded(fh: Iterable[bytes]) -> Iterator[str]:
    """Lines of a binary stream (an archive member cannot be wrapped in TextIOWrapper: not seekable)."""
    for raw in fh:
        yield raw.decode("utf-8", errors="replace")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        yield from _text_lines(fh)


class _FolderSource:
    """An unpacked UT1 folder: <DIR>/<category>/{domains,urls,usage,expressions}."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def categories(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if any((d / n).is_file() for n in (*LIST_FILES, "usage")):
                usage = d / "usage"
                found[d.name] = tuple(x.lower() for _, x in _lines(usage)) if usage.is_file() else ()
        return found

    def files(self, selected: set[str]) -> Iterator[tuple[str, str, Iterator[tuple[int, str]]]]:
        for name in sorted(selected):
            for file_name in LIST_FILES:
                path = self.root / name / file_name
                if path.is_file():
                    yield name, file_name, _lines(path)


class _TarSource:
    """The downloaded archive itself (blacklists.tar.gz), read as a stream twice, never unpacked."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _members(self) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo, str, str]]:
        with tarfile.open(self.path, "r|*") as tar:
            for member in tar:
                parts = member.name.strip("/").split("/")
                if member.isfile() and len(parts) >= 2:
                    yield tar, member, parts[-2], parts[-1]

    def categories(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for tar, member, category, file_name in self._members():
            if file_name == "usage":
                fh = tar.extractfile(member)
                if fh is not None:
                    text = _decoded(fh)
                    found[category] = tuple(x.lower() for _, x in _text_lines(text))
            elif file_name in LIST_FILES:
                found.setdefault(category, ())
        return dict(sorted(found.items()))

    def files(self, selected: set[str]) -> Iterator[tuple[str, str, Iterator[tuple[int, str]]]]:
        for tar, member, category, file_name in self._members():
            if category in selected and file_name in LIST_FILES:
                fh = tar.extractfile(member)
                if fh is not None:
                    yield (
                        category,
                        file_name,
                        _text_lines(_decoded(fh)),
                    )


def _schema(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
        CREATE TABLE categories (name TEXT PRIMARY KEY, usage TEXT, severity INTEGER, domains INTEGER,
                                 urls INTEGER, expressions INTEGER) WITHOUT ROWID;
        CREATE TABLE entries (value TEXT NOT NULL, category TEXT NOT NULL, kind TEXT NOT NULL,
                              line INTEGER NOT NULL);
        CREATE TABLE expressions (category TEXT, line INTEGER, pattern TEXT);
        """
    )


def _domain_rows(
    lines: Iterator[tuple[int, str]], category: str, report: CategoryReport
) -> Iterator[tuple[str, str, str, int]]:
    for number, line in lines:
        host = normalise_host(line)
        if not host or not _HOSTCHARS.match(host):
            report.bad_lines += 1
            continue
        report.domains += 1
        yield host, category, "d", number


def _url_rows(
    lines: Iterator[tuple[int, str]], category: str, report: CategoryReport
) -> Iterator[tuple[str, str, str, int]]:
    for number, line in lines:
        key = url_key(line).rstrip("/")
        if not key or key.startswith("/") or " " in key:
            report.bad_lines += 1
            continue
        report.urls += 1
        yield key, category, "u" if "/" in key else "d", number


def _batched(rows: Iterable[tuple[str, str, str, int]], db: sqlite3.Connection) -> None:
    batch: list[tuple[str, str, str, int]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", batch)
            batch.clear()
    if batch:
        db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", batch)


def import_ut1(
    source: Path | str,
    output: Path | str | None = None,
    *,
    categories: Iterable[str] | None = None,
    severities: dict[str, int] | None = None,
    very_restrictive: bool = False,
) -> ImportReport:
    """Import a UT1 folder (or its .tar.gz) into a compiled lookup file; ConfigError when it is not one."""
    start = time.perf_counter()
    src = Path(source)
    out = Path(output) if output else default_path()
    reader: _FolderSource | _TarSource
    if src.is_dir():
        reader = _FolderSource(src)
    elif src.is_file() and tarfile.is_tarfile(src):
        reader = _TarSource(src)
    else:
        raise ConfigError(str(src), "not a folder or .tar.gz; give the UT1 'blacklists' folder or archive")
    try:
        found = reader.categories()
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ConfigError(str(src), f"cannot read the archive: {exc}") from exc
    wanted = {c.strip() for c in categories} if categories else None
    if wanted:
        missing = wanted - set(found)
        if missing:
            raise ConfigError(str(src), f"no such UT1 categories: {', '.join(sorted(missing))}")
        found = {k: v for k, v in found.items() if k in wanted}
    if not found:
        raise ConfigError(str(src), "no UT1 categories found (expected <category>/domains files)")
    severities = severities or {}
    report = ImportReport(str(src), str(out))
    cats: dict[str, CategoryReport] = {}
    for name, usage in found.items():
        whitelist = "white" in usage and "black" not in usage
        severity = severities.get(name, CATEGORY_SEVERITY.get(name, DEFAULT_SEVERITY))
        cats[name] = CategoryReport(name, usage, whitelist, severity)
        report.categories.append(cats[name])
    selected = {name for name, cat in cats.items() if not cat.whitelist}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        _schema(db)
        for name, file_name, lines in reader.files(selected):
            cat = cats[name]
            if file_name == "domains":
                _batched(_domain_rows(lines, name, cat), db)
            elif file_name == "urls":
                _batched(_url_rows(lines, name, cat), db)
            elif file_name == "expressions" or very_restrictive:
                for number, pattern in lines:
                    try:
                        re.compile(pattern)
                    except re.error:
                        cat.bad_lines += 1
                        continue
                    db.execute(
                        "INSERT INTO expressions VALUES (?, ?, ?)", (name, number, f"{file_name}\t{pattern}")
                    )
                    cat.expressions += 1
        for name in sorted(selected):
            cat = cats[name]
            db.execute(
                "INSERT INTO categories VALUES (?, ?, ?, ?, ?, ?)",
                (name, " ".join(cat.usage), cat.severity, cat.domains, cat.urls, cat.expressions),
            )
        db.execute("CREATE INDEX ix_entries_value ON entries (value)")
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("source", str(src.resolve())), ("imported", str(time.time())), ("format", "1")],
        )
        db.commit()
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        db.close()
        tmp.unlink(missing_ok=True)
        raise ConfigError(str(src), f"cannot read the archive: {exc}") from exc
    except BaseException:
        db.close()
        tmp.unlink(missing_ok=True)
        raise
    db.close()
    os.replace(tmp, out)
    report.seconds = time.perf_counter() - start
    return report


class Ut1Lists:
    """Read-only lookups in a compiled UT1 file (thread-safe; a connection per instance)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(str(self.path), "no compiled UT1 list here; run `netmon lists import ut1 DIR`")
        try:
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False
            )
            rows = self._db.execute("SELECT name, severity FROM categories").fetchall()
            expr = self._db.execute("SELECT category, line, pattern FROM expressions").fetchall()
        except sqlite3.Error as exc:
            raise ConfigError(str(self.path), f"not a compiled UT1 list ({exc}); re-run the import") from exc
        self._lock = threading.Lock()
        self.severity = {name: int(sev) for name, sev in rows}
        self._expressions: list[tuple[str, int, str, re.Pattern[str]]] = []
        for category, line, stored in expr:
            file_name, _, pattern = stored.partition("\t")
            self._expressions.append((category, line, file_name, re.compile(pattern)))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted(self.severity))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _entries(self, keys: list[str]) -> list[UrlEntry]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT value, category, kind, line FROM entries WHERE value IN ({marks})",  # noqa: S608
                keys,
            ).fetchall()
        found = []
        for value, category, kind, line in rows:
            found.append(
                UrlEntry(
                    "domain" if kind == "d" else "prefix",
                    value,
                    category,
                    self.severity.get(category, DEFAULT_SEVERITY),
                    "UT1",
                    f"ut1:{category}/{'domains' if kind == 'd' else 'urls'}",
                    line,
                )
            )
        return found

    def match_host(self, host: str) -> tuple[UrlEntry, ...]:
        """Categories whose domain lists cover ``host`` or a parent domain (works for SNI alone)."""
        keys = list(host_suffixes(host))
        return tuple(e for e in self._entries(keys) if e.type == "domain")

    def match_url(self, url: str) -> tuple[UrlEntry, ...]:
        """Domain, URL-prefix (by whole path segments) and expression matches for a full URL."""
        key = url_key(url)
        host, _, rest = key.partition("/")
        path = rest.split("?", 1)[0].strip("/")
        segments = path.split("/")[:MAX_PATH_PREFIXES] if path else []
        hosts = list(host_suffixes(host))
        bare = [h[4:] for h in hosts[:1] if h.startswith("www.")]
        keys = list(hosts)
        for h in hosts[:1] + bare:
            for i in range(1, len(segments) + 1):
                keys.append(f"{h}/" + "/".join(segments[:i]))
        found = self._entries(keys)
        for category, line, file_name, pattern in self._expressions:
            if pattern.search(key):
                found.append(
                    UrlEntry(
                        "expression",
                        pattern.pattern[:200],
                        category,
                        self.severity.get(category, DEFAULT_SEVERITY),
                        "UT1",
                        f"ut1:{category}/{file_name}",
                        line,
                    )
                )
        return tuple(found)
