"""``netmon audit export``: the audit trail (who did what, when, from which address) as CSV or JSON Lines.

The export itself is audited. CSV cells are neutralised for spreadsheets (formulas, control characters).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.errors import NetmonError
from netmon.incidents.export import iso, parse_time
from netmon.incidents.queries import spreadsheet_cell
from netmon.store.incidents import AuditEvent

FIELDS = ("time", "action", "actor", "address", "subject", "detail")


def audit_records(
    session: Session, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Audit events, oldest first, as plain data (the address is lifted out of the detail)."""
    stmt = select(AuditEvent).order_by(AuditEvent.time, AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.time >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.time < until)
    for event in session.scalars(stmt.execution_options(yield_per=batch)):
        detail = dict(event.detail or {})
        yield {
            "time": iso(event.time),
            "action": event.action,
            "actor": event.actor,
            "address": detail.pop("address", None),
            "subject": event.subject,
            "detail": detail,
        }


def write(rows: Iterator[dict[str, Any]], fmt: str, out: TextIO) -> int:
    n = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
        return n
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for row in rows:
        flat = dict(row, detail=json.dumps(row["detail"], ensure_ascii=False, sort_keys=True))
        writer.writerow([spreadsheet_cell(flat[name]) for name in FIELDS])
        n += 1
    return n


def _time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
def audit() -> None:
    """The audit trail: views, exports, outcome changes, sign-ins and staff account changes."""


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(("csv", "jsonl")), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--since", callback=_time, help="From this date or time (ISO 8601, UTC if no offset).")
@click.option("--until", callback=_time, help="Before this date or time.")
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
def export(
    fmt: str, output: Path | None, since: datetime | None, until: datetime | None, db_url: str | None
) -> None:
    """Write the audit trail, oldest first, to a file or stdout."""
    from netmon.cli.staff_cmd import _engine, _who
    from netmon.store.incidents import audit as audit_event

    engine = _engine(db_url)
    try:
        with Session(engine) as session:
            if output is None:
                n = write(audit_records(session, since, until), fmt, sys.stdout)
            else:
                encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
                with output.open("w", encoding=encoding, newline="") as out:
                    n = write(audit_records(session, since, until), fmt, out)
        with Session(engine) as session, session.begin():
            audit_event(
                session, "audit.export", actor=_who(), address="cli", format=fmt, rows=n,
                since=iso(since), until=iso(until),
            )  # fmt: skip
    except (NetmonError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if output is not None:
        click.echo(f"{n} audit events written to {output}", err=True)
