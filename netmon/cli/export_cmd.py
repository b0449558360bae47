"""``netmon export`` (CSV / JSON Lines) and ``netmon incidents`` (latest incidents, one in full)."""

from __future__ import annotations

import getpass
import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from netmon.config.paths import default_db_url
from netmon.errors import NetmonError
from netmon.safe_text import neutralise

DB_HELP = "Database URL (default: $NETMON_DB or the SQLite file in the state directory)."


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0] if text else ''}"


def open_engine(url: str) -> Engine:
    """An engine on an existing netmon store, or a one-line ClickException saying how to fix it."""
    from netmon.store.db import make_engine

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise click.ClickException(f"--db: invalid database URL {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).exists():
            raise click.ClickException(
                f"no incident store at {database} (start netmon, or run `netmon db upgrade --db {url}`)"
            )
    try:
        engine = make_engine(url)
        if not inspect(engine).has_table("incidents"):
            engine.dispose()
            raise click.ClickException(
                f"{_safe_url(url)} has no netmon tables (run `netmon db upgrade --db URL`)"
            )
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot read the incident store {_safe_url(url)}: {_first_line(exc)}"
        ) from exc
    return engine


def guarded[T](url: str, action: Callable[[], T]) -> T:
    """Run ``action``, turning a store error into one clear line."""
    try:
        return action()
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot read the incident store {_safe_url(url)}: {_first_line(exc)}"
        ) from exc


def record_audit(engine: Engine, actor: str, *, site: str | None, **detail: Any) -> None:
    """An "export" audit event: who and which filters, never content. Its site is the one read (``""``
    when the whole trust was read)."""
    from netmon.store.incidents import audit

    with Session(engine) as session, session.begin():
        audit(session, "export", actor=actor, site=site or "", **detail)


SITE_HELP = (
    "Only incidents of this site (NETMON_SITE of the gateway that recorded them); "
    "without it, every site of the store (the whole trust)."
)


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _time_option(name: str) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        from netmon.incidents.export import parse_time

        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise click.ClickException(f"{name}: {exc}") from exc

    return convert


@contextmanager
def output(path: str, fmt: str) -> Iterator[TextIO]:
    """The output stream: a file or stdout; CSV gets the UTF-8 BOM, JSONL plain UTF-8."""
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    if path == "-":
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding, newline="", write_through=False)
        try:
            yield stream
        finally:
            stream.flush()
            stream.detach()
        return
    target = Path(path)
    partial = target.with_name(f".{target.name}.part")  # renamed over FILE only when complete
    try:
        fh = open(partial, "w", encoding=encoding, newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise click.ClickException(f"-o {path}: cannot write: {exc.strerror}") from exc
    try:
        with fh:
            yield fh
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@click.command()
@click.option("--db", "db_url", default=None, help=DB_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="jsonl",
    show_default=True,
    help="csv opens in Excel (UTF-8 BOM, formulas neutralised); jsonl is one object a line.",
)
@click.option(
    "--since",
    callback=_time_option("--since"),
    metavar="ISO",
    help="Only incidents first seen at or after this time (UTC unless an offset is given).",
)
@click.option(
    "--until",
    callback=_time_option("--until"),
    metavar="ISO",
    help="Only incidents first seen before this time.",
)
@click.option(
    "--category", "categories", multiple=True, metavar="C", help="Only this category (repeat for several)."
)
@click.option(
    "--min-severity",
    type=click.IntRange(1, 5),
    default=None,
    metavar="N",
    help="Only incidents of at least this severity (1-5).",
)
@click.option("--user", default=None, metavar="U", help="Only this user.")
@click.option("--site", default=None, metavar="S", help=SITE_HELP)
@click.option("-o", "--output", "out", default="-", metavar="FILE", help="Write here (default: stdout).")
def export(
    db_url: str | None,
    fmt: str,
    since: Any,
    until: Any,
    categories: tuple[str, ...],
    min_severity: int | None,
    user: str | None,
    site: str | None,
    out: str,
) -> None:
    """Export incidents (streamed, oldest first) as CSV or JSON Lines."""
    from netmon.incidents import export as exporter

    url = db_url or default_db_url()
    filters = exporter.ExportFilter(
        since=since, until=until, categories=categories, min_severity=min_severity, user=user, site=site
    )
    engine = open_engine(url)
    try:
        with output(out, fmt) as stream:
            count = guarded(url, lambda: exporter.write(engine, fmt, stream, filters))
        guarded(
            url,
            lambda: record_audit(
                engine,
                who(),
                site=site,
                command="export",
                format=fmt,
                rows=count,
                output=out,
                filters=filters.describe(),
            ),
        )
    finally:
        engine.dispose()
    if out != "-":
        click.echo(f"{count} incident(s) written to {out}", err=True)


def clean(value: object, width: int | None = None) -> str:
    """Safe for a terminal: escapes, control and bidi characters shown inert, one line, cut to ``width``."""
    text = neutralise(" ".join(str(value if value is not None else "").split()), keep_newlines=False)
    if width is not None and len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return text


COLUMNS = (
    ("TIME (UTC)", 17),
    ("UID", 8),
    ("SEV", 3),
    ("CATEGORY", 18),
    ("WHO", 16),
    ("SOURCE", 9),
    ("HOST", 26),
    ("PHRASE", 20),
    ("COUNT", 5),
)


@click.command()
@click.option("--db", "db_url", default=None, help=DB_HELP)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="How many of the latest incidents to list.",
)
@click.option(
    "--show",
    "show_uid",
    default=None,
    metavar="UID",
    help="Show one incident in full, with why it fired (a unique prefix of the uid is enough).",
)
@click.option("--site", default=None, metavar="S", help=SITE_HELP)
def incidents(db_url: str | None, limit: int, show_uid: str | None, site: str | None) -> None:
    """List the latest incidents as a table, or show one in full."""
    url = db_url or default_db_url()
    engine = open_engine(url)
    try:
        if show_uid:
            guarded(url, lambda: _show(engine, show_uid, site))
            guarded(url, lambda: record_audit(engine, who(), site=site, command="incidents", show=show_uid))
        else:
            shown = guarded(url, lambda: _table(engine, limit, site))
            guarded(
                url,
                lambda: record_audit(engine, who(), site=site, command="incidents", limit=limit, rows=shown),
            )
    finally:
        engine.dispose()


def _table(engine: Engine, limit: int, site: str | None) -> int:
    from netmon.store.incidents import Incident

    stmt = select(Incident).order_by(Incident.time.desc(), Incident.id.desc()).limit(limit)
    if site is not None:
        stmt = stmt.where(Incident.site == site)
    with Session(engine) as session:
        rows = list(session.scalars(stmt))
    if not rows:
        click.echo("no incidents recorded" + (f" at site {clean(site)!r}" if site is not None else ""))
        return 0
    # A trust's store read as a whole says which school each incident is from.
    columns = COLUMNS + (("SITE", 14),) if site is None and any(r.site for r in rows) else COLUMNS
    click.echo("  ".join(name.ljust(width) for name, width in columns).rstrip())
    for r in rows:
        cells = (*_cells(r), r.site or "-")[: len(columns)]
        click.echo("  ".join(clean(c, w).ljust(w) for c, (_, w) in zip(cells, columns, strict=True)).rstrip())
    click.echo(f"({len(rows)} latest; `netmon incidents --show UID` for one in full)")
    return len(rows)


def _cells(r: Any) -> tuple[object, ...]:
    return (
        r.time.strftime("%Y-%m-%d %H:%M"),
        r.uid[:8],
        r.severity,
        r.category,
        r.user or r.client_ip,
        r.source,
        r.host,
        r.phrase,
        r.count,
    )


def _show(engine: Engine, uid: str, site: str | None = None) -> None:
    from netmon.incidents.export import iso
    from netmon.store.incidents import Incident

    prefix = uid.strip().lower()
    with Session(engine) as session:
        stmt = select(Incident).where(Incident.uid.startswith(prefix, autoescape=True))
        if site is not None:
            stmt = stmt.where(Incident.site == site)
        found = list(session.scalars(stmt.limit(2)))
        if not found:
            raise click.ClickException(f"no incident with uid {clean(uid)!r} (see `netmon incidents`)")
        if len(found) > 1:
            n = session.scalar(select(func.count()).select_from(stmt.subquery()))
            raise click.ClickException(f"uid prefix {clean(uid)!r} matches {n} incidents: give more of it")
        r = found[0]
        lines = [
            f"Incident {r.uid}",
            f"  first seen   {iso(r.time)}   last seen {iso(r.last_seen)}   count {r.count}",
            f"  category     {clean(r.category)}   severity {r.severity}   source {clean(r.source)}",
            f"  phrase       {clean(r.phrase)}",
            f"  user         {clean(r.user or '(unknown)')}   role {clean(r.role or '-')}   "
            f"year {clean(r.year_group or '-')}   groups {clean(', '.join(r.groups or []) or '-')}",
            f"  device       {clean(r.client_ip)}   mac {clean(r.mac or '-')}   "
            f"{clean(r.device or '')}".rstrip(),
            f"  site         {clean(r.site or '-')}",
            f"  host         {clean(r.host)}",
            f"  url          {clean(r.url)}",
            f"  excerpt      {clean(r.excerpt) or '-'}",
            "  phrases      "
            + (
                clean(
                    ", ".join(
                        f"{p.get('phrase')} ({p.get('category')}, {p.get('severity')})"
                        for p in r.phrases or []
                    )
                )
                or "-"
            ),
            "  why it fired:",
        ]
        for e in r.explanation or []:
            lines.append(
                f"    - {clean(e.get('phrase'))!r} ({clean(e.get('category'))}, severity "
                f"{e.get('severity')}) from {clean(e.get('library_file'))} line {e.get('line')}"
            )
            if e.get("matched_text"):
                lines.append(
                    f"      matched {clean(e['matched_text'])!r} in the {clean(e.get('source'))} text"
                )
            if e.get("steps"):
                lines.append("      normalisation: " + clean(", ".join(e["steps"])))
            if e.get("rules"):
                lines.append("      rules weighed: " + clean("; ".join(e["rules"])))
        if r.evidence:
            lines.append("  evidence     " + clean(", ".join(f"{k}={v}" for k, v in r.evidence.items())))
        capture = len(r.capture_text or "")
        snapshot = len(r.snapshot) if r.snapshot is not None else 0
        lines.append(
            f"  capture      {capture} characters of text; snapshot "
            f"{f'{snapshot} bytes ({clean(r.snapshot_type)})' if snapshot else 'none'}"
        )
    click.echo("\n".join(lines))
