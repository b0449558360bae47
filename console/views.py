"""Incident pages: the triage queue, one incident (why it fired, the inert capture, the review and its
history), review changes and CSV export of a view. Every view, change and export is audited (at the
incident's site, so that site's auditor reads it). A member of staff with a site sees only that site's
incidents: in lists by the filter, for one incident by :func:`_incident` (403)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from netmon_console.auth import record, require, state
from netmon_console.capture import CAPTURE_CSP, inert_document
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.incidents import queries
from netmon.incidents.outcomes import ReviewChange, ReviewError, change_review, queue_outcome_webhook
from netmon.store.console import CONTENT_ROLES, IN_REVIEW, NEW, OUTCOMES, STATUSES, StaffAccount
from netmon.store.incidents import Incident

bp = Blueprint("console", __name__)
FILTER_ARGS = ("status", "severity", "category", "pupil", "group", "year", "since", "until", "assignee")


def _date(text: str | None, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        abort(400, f"dates are YYYY-MM-DD (got {text[:20]!r})")
    return day + timedelta(days=1) if end else day


def view_filter() -> tuple[queries.QueueFilter, dict[str, str]]:
    """The view's filters from the query string (and the staff member's scope), and the args as given."""
    args = {name: request.args.get(name, "").strip()[:100] for name in FILTER_ARGS}
    status = args["status"] or "new"
    if status != "all" and status not in STATUSES:
        abort(400, f"status must be one of {', '.join(STATUSES)} or all")
    severity = args["severity"]
    if severity and not (severity.isdigit() and 1 <= int(severity) <= 5):
        abort(400, "severity must be 1-5")
    f = queries.QueueFilter(
        statuses=() if status == "all" else (status,),
        min_severity=int(severity) if severity else None,
        category=args["category"] or None,
        pupil=args["pupil"] or None,
        group=args["group"] or None,
        year_group=args["year"] or None,
        since=_date(args["since"]),
        until=_date(args["until"], end=True),
        assignee=args["assignee"] or None,
        scope=g.staff.scope,
        site=g.staff.site or None,
    )
    args["status"] = status
    return f, {k: v for k, v in args.items() if v}


@bp.route("/")
def index() -> Any:
    return redirect(url_for(g.staff.home))


@bp.route("/incidents")
@require("incidents")
def queue() -> Any:
    f, args = view_filter()
    after = queries.Cursor.decode(request.args.get("after"))
    with Session(state().engine) as db, db.begin():
        page = queries.queue(db, f, after)
        counts = queries.status_counts(db, f)
        record(db, "console.queue.view", None, filters=f.describe(), rows=len(page.rows))
    next_url = url_for("console.queue", **args, after=page.next.encode()) if page.next else None
    return render_template(
        "queue.html", page=page, counts=counts, args=args, next_url=next_url, first=after is None,
        statuses=STATUSES, content=g.staff.can("content"),
    )  # fmt: skip


def _incident(db: Session, uid: str) -> Incident:
    """The incident ``uid`` if this member of staff may see it: 404 unknown, 403 outside their scope."""
    incident = queries.incident_by_uid(db, uid[:32])
    if incident is None:
        abort(404)
    if not queries.in_scope(g.staff.scope, incident.year_group, incident.groups) or not queries.in_site(
        g.staff.site, incident.site
    ):
        with Session(state().engine) as audit_db, audit_db.begin():  # kept although this request fails
            record(audit_db, "console.incident.refused", incident.uid, path=request.path)
        abort(403)
    return incident


@dataclass
class Reason:
    """One phrase or rule, shown once: how often it matched, where it is defined, what it needed."""

    phrase: str
    category: str
    severity: int
    library_file: str
    line: int | None
    count: int
    steps: list[str]
    rules: list[str]
    matched: list[str]
    sources: list[str]


def reasons(explanation: list[dict[str, Any]]) -> list[Reason]:
    merged: dict[tuple[Any, ...], Reason] = {}
    for e in explanation or []:
        key = (e.get("phrase"), e.get("category"), e.get("library_file"), e.get("line"))
        r = merged.get(key)
        if r is None:
            r = merged[key] = Reason(
                str(e.get("phrase") or ""), str(e.get("category") or ""), int(e.get("severity") or 0),
                str(e.get("library_file") or ""), e.get("line"), 0, [], [], [], [],
            )  # fmt: skip
        r.count += 1
        for target, values in (
            (r.steps, e.get("steps") or []),
            (r.rules, e.get("rules") or []),
            (r.matched, [e.get("matched_text")] if e.get("matched_text") else []),
            (r.sources, [e.get("source")] if e.get("source") else []),
        ):
            target.extend(str(v) for v in values if str(v) not in target)
    return sorted(merged.values(), key=lambda r: (-r.severity, -r.count, r.phrase))


def _assignees(db: Session, incident: Incident) -> list[str]:
    accounts = db.scalars(
        select(StaffAccount).where(StaffAccount.disabled.is_(False), StaffAccount.role.in_(CONTENT_ROLES))
    )
    return sorted(
        a.username
        for a in accounts
        if (a.role != "pastoral" or queries.in_scope(a.scope or (), incident.year_group, incident.groups))
        and queries.in_site(a.site, incident.site)
    )


@bp.route("/incidents/<uid>")
@require("incidents")
def incident(uid: str) -> Any:
    with Session(state().engine) as db, db.begin():
        found = _incident(db, uid)
        review = queries.review_state(db, found.id)
        site = g.staff.site or None
        timeline = queries.pupil_timeline(db, found, site=site) if g.staff.can("content") else ()
        timeline = tuple(r for r in timeline if queries.in_scope(g.staff.scope, r.year_group, r.groups))
        flags = queries.pupil_flags(db, found, site=site) if g.staff.can("content") else ()
        assignees = _assignees(db, found)
        record(db, "console.incident.view", found.uid, found.site)
        image = found.source == "image" or bool((found.evidence or {}).get("sha256"))
        return render_template(
            "incident.html", i=found, review=review, reasons=reasons(found.explanation), timeline=timeline,
            content=g.staff.can("content"), can_change=g.staff.can("outcome"), statuses=STATUSES,
            outcomes=OUTCOMES, assignees=assignees, image=image, error=request.args.get("error"), flags=flags,
            has_capture=found.snapshot is not None or bool(found.capture_text),
        )  # fmt: skip


@bp.route("/incidents/<uid>/capture")
@require("content")
def capture(uid: str) -> Response:
    with Session(state().engine) as db, db.begin():
        found = _incident(db, uid)
        record(db, "console.capture.view", found.uid, found.site)
        document = inert_document(found.snapshot, found.snapshot_type, found.capture_text)
    response = Response(document, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CAPTURE_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/incidents/<uid>/review", methods=["POST"])
@require("outcome")
def review(uid: str) -> Any:
    form = request.form
    with Session(state().engine) as db, db.begin():
        found = _incident(db, uid)
        assignee = form.get("assignee")
        if assignee and assignee not in _assignees(db, found):
            abort(400, "that colleague cannot be assigned this incident")
        change = ReviewChange(
            status=form.get("status") or None,
            outcome=form.get("outcome") if "outcome" in form else None,
            assignee=assignee,
            note=form.get("note", ""),
        )
        try:
            entry = change_review(db, found, g.staff.username, change)
        except ReviewError as exc:  # raised before anything is written
            return redirect(url_for("console.incident", uid=found.uid, error=str(exc)) + "#review")
        if entry is not None:
            record(db, "console.incident.change", found.uid, found.site, changes=entry.changes,
                   note=bool(entry.note))  # fmt: skip
            _to_record_system(db, found, entry)
        uid = found.uid
    return redirect(url_for("console.incident", uid=uid) + "#review")


def _to_record_system(db: Session, found: Incident, entry: Any) -> None:
    """A change of status or outcome goes to the school's record system (the signed webhook), if set."""
    url = state().config.webhook_url
    if url and {"status", "outcome"} & set(entry.changes):
        queue_outcome_webhook(db, found, entry, url)


@bp.route("/incidents/<uid>/acknowledge", methods=["POST"])
@require("outcome")
def acknowledge(uid: str) -> Any:
    """Take the incident up: ``new`` becomes ``in_review`` (this stops escalation to the next contact)."""
    with Session(state().engine) as db, db.begin():
        found = _incident(db, uid)
        entry = None
        if queries.review_state(db, found.id).status == NEW:
            change = ReviewChange(status=IN_REVIEW, note="acknowledged")
            entry = change_review(db, found, g.staff.username, change)
        record(db, "console.incident.acknowledge", found.uid, found.site, changed=entry is not None)
        if entry is not None:
            _to_record_system(db, found, entry)
        uid = found.uid
    return redirect(url_for("console.incident", uid=uid) + "#review")


@bp.route("/export.csv")
@require("export")
def export() -> Response:
    f, _args = view_filter()
    with Session(state().engine) as db, db.begin():
        record(db, "console.export", None, filters=f.describe(), format="csv")

    engine = state().engine

    def stream() -> Iterator[str]:
        buffer = io.StringIO()
        buffer.write("\ufeff")
        with Session(engine) as db:
            yield from _chunks(queries.export_records(db, f), buffer)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    response = Response(stream(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="netmon-incidents-{stamp}.csv"'
    return response


def _chunks(rows: Iterator[dict[str, Any]], buffer: io.StringIO, size: int = 200) -> Iterator[str]:
    """CSV text in chunks of ``size`` rows (the header first)."""
    batch: list[dict[str, Any]] = []

    def flush(first: bool) -> str:
        queries.write_csv(iter(batch), buffer, header=first)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        batch.clear()
        return text

    first = True
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield flush(first)
            first = False
    yield flush(first)
