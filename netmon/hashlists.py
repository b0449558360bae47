"""Known-image hash lists: CSV files ``type,hash,category,severity,source``.

``type`` is an exact digest of the image bytes (``md5``, ``sha1``, ``sha256``: what the IWF supplies) or a
perceptual hash of the picture (``phash``, ``dhash``: imagehash's 64-bit hash as 16 hex digits). Lines that
are blank or start with ``#`` are ignored. Every entry keeps its file and line so an incident can say
exactly which list entry matched.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netmon.errors import ConfigError

HEADER = ("type", "hash", "category", "severity", "source")
EXACT_TYPES = {"md5": 32, "sha1": 40, "sha256": 64}
PERCEPTUAL_TYPES = {"phash": 16, "dhash": 16}
HASH_TYPES = {**EXACT_TYPES, **PERCEPTUAL_TYPES}
_HEX = set("0123456789abcdef")


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


@dataclass(frozen=True, slots=True)
class HashListReport:
    """The result of checking one list: good entries and every error with its line."""

    path: str
    entries: tuple[HashEntry, ...] = ()
    errors: tuple[str, ...] = ()  # "FILE:LINE: message"
    counts: dict[str, int] = field(default_factory=dict)  # entries per type

    @property
    def ok(self) -> bool:
        return not self.errors


def _rows(text: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(text)
    for row in reader:
        yield reader.line_num, row


def parse_entry(row: list[str], where: str, line: int) -> HashEntry:
    """Validate one CSV row; raise ConfigError naming ``where:line`` and the fix."""
    loc = f"{where}:{line}"
    if len(row) != len(HEADER):
        raise ConfigError(loc, f"expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(row)}")
    kind, digest, category, severity, source = (c.strip() for c in row)
    kind = kind.lower()
    if kind not in HASH_TYPES:
        raise ConfigError(loc, f"type must be one of {', '.join(HASH_TYPES)} (got {kind!r})")
    digest = digest.lower()
    want = HASH_TYPES[kind]
    if len(digest) != want or not set(digest) <= _HEX:
        raise ConfigError(loc, f"{kind} hash must be {want} hex digits (got {digest[:80]!r})")
    if not category:
        raise ConfigError(loc, "category is empty; give the list's category, e.g. csam")
    try:
        sev = int(severity)
    except ValueError:
        raise ConfigError(loc, f"severity must be a whole number 1-5 (got {severity!r})") from None
    if not 1 <= sev <= 5:
        raise ConfigError(loc, f"severity must be 1-5 (got {sev})")
    return HashEntry(kind, digest, category, sev, source, where, line)


def check_hash_list(path: Path | str) -> HashListReport:
    """Read a hash list and report every problem with its line number (never raises for content)."""
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return HashListReport(where, errors=(f"{where}: cannot read: {exc.strerror or exc}",))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return HashListReport(
            where, errors=(f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8",)
        )
    entries: list[HashEntry] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    header_seen = False
    for line, row in _rows(io.StringIO(text)):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            if tuple(c.strip().lower() for c in row) != HEADER:
                errors.append(f"{where}:{line}: header must be {','.join(HEADER)} (got {','.join(row)[:80]})")
            continue
        try:
            entry = parse_entry(row, where, line)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        key = (entry.type, entry.hash)
        if key in seen:
            errors.append(f"{where}:{line}: duplicate {entry.type} {entry.hash} (first on line {seen[key]})")
            continue
        seen[key] = line
        entries.append(entry)
    if not header_seen:
        errors.append(f"{where}:1: empty list; the first line must be the header {','.join(HEADER)}")
    counts = Counter(e.type for e in entries)
    return HashListReport(where, tuple(entries), tuple(errors), dict(counts))


def load_hash_list(path: Path | str) -> tuple[HashEntry, ...]:
    """Load a hash list, raising ConfigError on the first problem (used at start-up and reload)."""
    report = check_hash_list(path)
    if report.errors:
        first = report.errors[0]
        more = (
            f" (and {len(report.errors) - 1} more; run `netmon hashlist check {path}`)"
            if len(report.errors) > 1
            else ""
        )
        raise ConfigError("", first + more)
    return report.entries


def format_entry(kind: str, digest: str, category: str, severity: int, source: str) -> str:
    """One CSV line for a list (used by ``netmon hashlist hash``)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([kind, digest, category, severity, source])
    return buf.getvalue()
