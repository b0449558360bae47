"""Streaming export of incidents as JSON Lines or CSV, with filters.

- Rows are read with ``yield_per`` (a server-side cursor on PostgreSQL), so memory stays flat whatever the
  size of the store; the capture text and snapshot are never read or exported.
- JSONL: one object a line (UTF-8), times ISO 8601 in UTC with a ``Z``.
- CSV: UTF-8 with a BOM so Excel opens it right; any text cell starting with ``= + - @`` (or a tab or
  carriage return) gets a leading ``'`` so a spreadsheet never runs it as a formula.
- Both: terminal escapes, control and bidi characters in the captured text are shown inert
  (:func:`netmon.safe_text.neutralise`), so a captured page cannot rewrite a terminal or a cell.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session, defer

from netmon.safe_text import neutralise
from netmon.store.incidents import Incident

FORMATS = ("csv", "jsonl")
#: Fields of every exported incident, in CSV column order.
FIELDS = (
    "time", "last_seen", "count", "uid", "site", "user", "role", "year_group", "groups", "client_ip", "mac",
    "device", "host", "url", "source", "category", "severity", "phrase", "phrases", "excerpt",
    "explanation", "evidence",
)  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which incidents to export; every field is optional. Times compare with the first-seen time."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    categories: tuple[str, ...] = ()
    min_severity: int | None = None
    user: str | None = None
    site: str | None = None  # one school of a trust ("" is incidents with no site); None: every site

    def describe(self) -> dict[str, Any]:
        """The filters as plain data, for the audit trail (no content)."""
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "categories": list(self.categories),
            "min_severity": self.min_severity,
            "user": self.user,
            "site": self.site,
        }


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is taken as UTC. Raises ValueError."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 date or time: {text!r} (e.g. 2026-11-01 or 2026-11-01T08:00:00Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """``2026-11-28T09:35:05Z`` (UTC, seconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def query(filters: ExportFilter) -> Select[Any]:
    stmt = select(Incident).options(defer(Incident.capture_text), defer(Incident.snapshot))
    if filters.since is not None:
        stmt = stmt.where(Incident.time >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(Incident.time < filters.until)
    if filters.categories:
        stmt = stmt.where(Incident.category.in_(filters.categories))
    if filters.min_severity is not None:
        stmt = stmt.where(Incident.severity >= filters.min_severity)
    if filters.user is not None:
        stmt = stmt.where(Incident.user == filters.user)
    if filters.site is not None:
        stmt = stmt.where(Incident.site == filters.site)
    return stmt.order_by(Incident.time, Incident.id)


def record(incident: Incident) -> dict[str, Any]:
    """One incident as plain JSON-able data (the JSONL object)."""
    return {
        "time": iso(incident.time),
        "last_seen": iso(incident.last_seen),
        "count": incident.count,
        "uid": incident.uid,
        "site": incident.site,
        "user": incident.user,
        "role": incident.role,
        "year_group": incident.year_group,
        "groups": list(incident.groups or []),
        "client_ip": incident.client_ip,
        "mac": incident.mac,
        "device": incident.device,
        "host": incident.host,
        "url": incident.url,
        "source": incident.source,
        "category": incident.category,
        "severity": incident.severity,
        "phrase": incident.phrase,
        "phrases": list(incident.phrases or []),
        "excerpt": incident.excerpt,
        "explanation": list(incident.explanation or []),
        "evidence": dict(incident.evidence or {}),
    }


def records(engine: Engine, filters: ExportFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Stream matching incidents as records, oldest first."""
    with Session(engine) as session:
        result = session.execute(query(filters).execution_options(yield_per=batch)).scalars()
        for incident in result:
            yield record(incident)
            session.expunge(incident)


def inert(value: Any) -> Any:
    """``value`` with every string in it neutralised (lists and dicts walked)."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, list):
        return [inert(v) for v in value]
    if isinstance(value, dict):
        return {k: inert(v) for k, v in value.items()}
    return value


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps(inert(row), ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
    return n


def csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas and control characters in text cells (numbers pass unchanged)."""
    if not isinstance(value, str):
        return value
    value = neutralise(value)
    return "'" + value if value.startswith(FORMULA_START) else value


def why(explanation: list[dict[str, Any]]) -> str:
    """The explanation as one readable cell."""
    parts = []
    for e in explanation:
        text = f"{e.get('phrase')} ({e.get('library_file')}:{e.get('line')}"
        if e.get("steps"):
            text += "; steps: " + ", ".join(e["steps"])
        if e.get("rules"):
            text += "; rules: " + ", ".join(e["rules"])
        parts.append(text + ")")
    return "; ".join(parts)


def csv_row(row: dict[str, Any]) -> list[Any]:
    flat = dict(row)
    flat["groups"] = ", ".join(row["groups"])
    flat["phrases"] = ", ".join(f"{p.get('phrase')} ({p.get('severity')})" for p in row["phrases"])
    flat["explanation"] = why(row["explanation"])
    flat["evidence"] = json.dumps(row["evidence"], ensure_ascii=False) if row["evidence"] else ""
    return [csv_safe("" if flat[name] is None else flat[name]) for name in FIELDS]


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write the CSV (the caller opens ``out`` with ``encoding="utf-8-sig", newline=""`` for the BOM)."""
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    n = 0
    for row in rows:
        writer.writerow(csv_row(row))
        n += 1
    return n


def write(engine: Engine, fmt: str, out: TextIO, filters: ExportFilter) -> int:
    """Export matching incidents to ``out`` in ``fmt`` (``csv`` or ``jsonl``); returns the row count."""
    rows = records(engine, filters)
    if fmt == "csv":
        return write_csv(rows, out)
    if fmt == "jsonl":
        return write_jsonl(rows, out)
    raise ValueError(f"unknown export format {fmt!r} (use csv or jsonl)")
