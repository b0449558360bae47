"""Known-image hash lists: CSV files ``type,hash,category,severity,source``.

``type`` is an exact digest of the image bytes (``md5``, ``sha1``, ``sha256``: what the IWF supplies) or a
perceptual hash of the picture (``phash``, ``dhash``: imagehash's 64-bit hash as 16 hex digits). Lines that
are blank or start with ``#`` are ignored. Every entry keeps its file and line so an incident can say
exactly which list entry matched.

Lists can hold millions of hashes, so a list is parsed straight into compact columns
(:class:`HashColumns`: numpy arrays of digests, line numbers and an index into a small table of
category/severity/source), never into one Python object per line. A repeated hash is a warning (the first
line counts), not an error.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netmon.errors import ConfigError

HEADER = ("type", "hash", "category", "severity", "source")
EXACT_TYPES = {"md5": 32, "sha1": 40, "sha256": 64}
PERCEPTUAL_TYPES = {"phash": 16, "dhash": 16}
HASH_TYPES = {**EXACT_TYPES, **PERCEPTUAL_TYPES}
_SEVERITIES = {str(n): n for n in range(1, 6)}
MAX_REPORTED = 1000  # problems listed per file; the rest are counted


@dataclass(frozen=True, slots=True)
class HashEntry:
    """One known-image hash, with where it came from."""

    type: str  # md5 | sha1 | sha256 | phash | dhash
    hash: str  # lower-case hex
    category: str
    severity: int  # 1-5
    source: str  # who supplied it, e.g. "IWF 2026-11"
    file: str  # the list file
    line: int  # line number in that file (1-based, header is line 1)

    @property
    def perceptual(self) -> bool:
        return self.type in PERCEPTUAL_TYPES


@dataclass(frozen=True)
class Column:
    """The hashes of one type from one list: digests (``S<n>`` bytes or ``uint64``), meta index, line."""

    values: np.ndarray
    meta: np.ndarray  # uint32 index into HashColumns.meta
    lines: np.ndarray  # uint32

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class HashColumns:
    """One parsed list in columns."""

    file: str
    meta: tuple[tuple[str, int, str], ...]  # (category, severity, source)
    columns: dict[str, Column]

    def __len__(self) -> int:
        return sum(len(c) for c in self.columns.values())

    def entry(self, kind: str, i: int) -> HashEntry:
        col = self.columns[kind]
        category, severity, source = self.meta[int(col.meta[i])]
        return HashEntry(
            kind, digest_hex(kind, col.values[i]), category, severity, source, self.file, int(col.lines[i])
        )

    def entries(self) -> list[HashEntry]:
        """Every entry as an object (for small lists and tests; big lists stay in columns)."""
        return [self.entry(kind, i) for kind, col in self.columns.items() for i in range(len(col))]


def digest_hex(kind: str, value: object) -> str:
    if kind in PERCEPTUAL_TYPES:
        return f"{int(value):016x}"  # type: ignore[call-overload]
    return bytes(value).ljust(EXACT_TYPES[kind] // 2, b"\0").hex()  # type: ignore[call-overload]


@dataclass(frozen=True)
class HashListReport:
    """The result of checking one list: its columns, every error and warning with its line."""

    path: str
    data: HashColumns | None = None
    errors: tuple[str, ...] = ()  # "FILE:LINE: message"
    warnings: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)  # entries per type

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def entries(self) -> list[HashEntry]:
        return self.data.entries() if self.data is not None else []


class _Builder:
    """Accumulates a list in compact arrays (bytes for digests, array('Q'/'I') for numbers)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.meta: dict[tuple[str, int, str], int] = {}
        self.exact: dict[str, bytearray] = {k: bytearray() for k in EXACT_TYPES}
        self.perceptual: dict[str, array[int]] = {k: array("Q") for k in PERCEPTUAL_TYPES}
        self.metas: dict[str, array[int]] = {k: array("I") for k in HASH_TYPES}
        self.lines: dict[str, array[int]] = {k: array("I") for k in HASH_TYPES}
        self._last: tuple[str, int, str, int] | None = None

    def meta_index(self, category: str, severity: int, source: str) -> int:
        last = self._last
        if last is not None and last[0] == category and last[1] == severity and last[2] == source:
            return last[3]
        key = (category, severity, source)
        index = self.meta.get(key)
        if index is None:
            index = self.meta[key] = len(self.meta)
        self._last = (category, severity, source, index)
        return index

    def add(self, kind: str, raw: bytes, category: str, severity: int, source: str, line: int) -> None:
        if kind in PERCEPTUAL_TYPES:
            self.perceptual[kind].append(int.from_bytes(raw, "big"))
        else:
            self.exact[kind] += raw
        self.metas[kind].append(self.meta_index(category, severity, source))
        self.lines[kind].append(line)

    def _values(self, kind: str) -> np.ndarray:
        if kind in PERCEPTUAL_TYPES:
            return np.frombuffer(self.perceptual[kind], dtype=np.uint64).copy()
        return np.frombuffer(bytes(self.exact[kind]), dtype=f"S{EXACT_TYPES[kind] // 2}").copy()

    def build(self) -> tuple[HashColumns, list[str]]:
        """Columns, plus a warning for each repeated hash (the first occurrence is kept)."""
        columns: dict[str, Column] = {}
        warnings: list[str] = []
        for kind in HASH_TYPES:
            if not self.lines[kind]:
                continue
            arr = self._values(kind)
            metas = np.frombuffer(self.metas[kind], dtype=np.uint32).copy()
            lines = np.frombuffer(self.lines[kind], dtype=np.uint32).copy()
            _, first = np.unique(arr, return_index=True)
            if len(first) != len(arr):
                keep = np.zeros(len(arr), dtype=bool)
                keep[first] = True
                seen_at = {digest_hex(kind, arr[i]): int(lines[i]) for i in first}
                for i in np.flatnonzero(~keep)[:MAX_REPORTED]:
                    digest = digest_hex(kind, arr[i])
                    warnings.append(
                        f"{self.where}:{int(lines[i])}: duplicate {kind} {digest} (first on line "
                        f"{seen_at[digest]}); ignored"
                    )
                extra = int((~keep).sum()) - MAX_REPORTED
                if extra > 0:
                    warnings.append(f"{self.where}: {extra} more duplicates")
                arr, metas, lines = arr[keep], metas[keep], lines[keep]
            columns[kind] = Column(arr, metas, lines)
        meta = tuple(sorted(self.meta, key=self.meta.__getitem__))
        return HashColumns(self.where, meta, columns), warnings


def _fields(line: str) -> list[str]:
    if '"' in line:
        return next(csv.reader([line]))
    return line.split(",")


def _parse(row: list[str], loc: str) -> tuple[str, bytes, str, int, str]:
    """Validate one row; raise ConfigError naming ``loc`` (``FILE:LINE``) and the fix."""
    if len(row) != len(HEADER):
        raise ConfigError(loc, f"expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(row)}")
    kind, digest, category, severity, source = (c.strip() for c in row)
    kind = kind.lower()
    want = HASH_TYPES.get(kind)
    if want is None:
        raise ConfigError(loc, f"type must be one of {', '.join(HASH_TYPES)} (got {kind[:40]!r})")
    raw: bytes | None = None
    if len(digest) == want and " " not in digest:
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raw = None
    if raw is None:
        raise ConfigError(loc, f"{kind} hash must be {want} hex digits (got {digest[:80]!r})")
    if not category:
        raise ConfigError(loc, "category is empty; give the list's category, e.g. csam")
    sev = _SEVERITIES.get(severity)
    if sev is None:
        try:
            number = int(severity)
        except ValueError:
            raise ConfigError(loc, f"severity must be a whole number 1-5 (got {severity[:20]!r})") from None
        raise ConfigError(loc, f"severity must be 1-5 (got {number})")
    return kind, raw, category, sev, source


def check_hash_list(path: Path | str) -> HashListReport:
    """Read a hash list and report every problem with its line number (never raises for content).

    Streams the file line by line; well-formed lines take a fast path, anything else the full check.
    """
    where = str(path)
    builder = _Builder(where)
    errors: list[str] = []
    error_count = 0
    header_seen = False
    number = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for number, line in enumerate(fh, 1):  # noqa: B007 - number is used after the loop
                line = line.strip()
                if not line or line[0] == "#":
                    continue
                if not header_seen:
                    header_seen = True
                    if tuple(c.strip().lower() for c in _fields(line)) != HEADER:
                        errors.append(
                            f"{where}:{number}: header must be {','.join(HEADER)} (got {line[:80]})"
                        )
                    continue
                parts = line.split(",")
                if len(parts) == 5 and '"' not in line:  # fast path
                    kind, digest, category, severity, source = parts
                    want = HASH_TYPES.get(kind)
                    sev = _SEVERITIES.get(severity)
                    if want is not None and sev is not None and len(digest) == want and " " not in digest:
                        category = category.strip()
                        if category:
                            try:
                                raw = bytes.fromhex(digest)
                            except ValueError:
                                pass
                            else:
                                builder.add(kind, raw, category, sev, source.strip(), number)
                                continue
                try:
                    kind, raw, category, sev, source = _parse(_fields(line), f"{where}:{number}")
                except ConfigError as exc:
                    error_count += 1
                    if len(errors) < MAX_REPORTED:
                        errors.append(str(exc))
                    continue
                builder.add(kind, raw, category, sev, source, number)
    except OSError as exc:
        return HashListReport(where, errors=(f"{where}: cannot read: {exc.strerror or exc}",))
    except UnicodeDecodeError as exc:
        return HashListReport(
            where, errors=(f"{where}: not UTF-8 text after line {number} ({exc.reason}); save it as UTF-8",)
        )
    if error_count > MAX_REPORTED:
        errors.append(f"{where}: {error_count - MAX_REPORTED} more problems not shown")
    if not header_seen:
        errors.append(f"{where}:1: empty list; the first line must be the header {','.join(HEADER)}")
    data, warnings = builder.build()
    counts = {kind: len(col) for kind, col in data.columns.items()}
    return HashListReport(where, data, tuple(errors), tuple(warnings), counts)


def load_hash_columns(path: Path | str) -> HashColumns:
    """Load a hash list, raising ConfigError on the first problem (used at start-up and reload)."""
    report = check_hash_list(path)
    if report.errors or report.data is None:
        first = report.errors[0]
        more = (
            f" (and {len(report.errors) - 1} more; run `netmon hashlist check {path}`)"
            if len(report.errors) > 1
            else ""
        )
        raise ConfigError("", first + more)
    return report.data


def load_hash_list(path: Path | str) -> tuple[HashEntry, ...]:
    """Load a (small) hash list as entry objects; ConfigError on the first problem."""
    return tuple(load_hash_columns(path).entries())


def columns_from_entries(
    entries: list[HashEntry] | tuple[HashEntry, ...], file: str = ""
) -> list[HashColumns]:
    """Entry objects back into columns, one HashColumns per file (for tests and small in-memory lists)."""
    by_file: dict[str, _Builder] = {}
    for e in entries:
        builder = by_file.setdefault(e.file or file, _Builder(e.file or file))
        builder.add(e.type, bytes.fromhex(e.hash), e.category, e.severity, e.source, e.line)
    return [b.build()[0] for b in by_file.values()]


def count_types(data: HashColumns) -> Counter[str]:
    return Counter({kind: len(col) for kind, col in data.columns.items()})


def format_entry(kind: str, digest: str, category: str, severity: int, source: str) -> str:
    """One CSV line for a list (used by ``netmon hashlist hash``)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([kind, digest, category, severity, source])
    return buf.getvalue()
