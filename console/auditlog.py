"""The audit log page: every sign-in, view, export, outcome change and staff account change, newest
first. Read-only: nothing in the console changes or deletes it (``netmon audit export`` writes it out).
A member of staff with a site reads that site's rows only (each row carries the site it concerns)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request, url_for
from netmon_console.auth import record, require, state
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.store.incidents import AuditEvent

bp = Blueprint("audit", __name__)
PAGE = 100


@bp.route("/audit")
@require("audit")
def log() -> Any:
    actor = request.args.get("actor", "").strip()[:150]
    action = request.args.get("action", "").strip()[:60]
    subject = request.args.get("subject", "").strip()[:255]
    before = request.args.get("before", "")
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
    if subject:
        stmt = stmt.where(AuditEvent.subject == subject)
    if g.staff.site:
        stmt = stmt.where(AuditEvent.site == g.staff.site)
    if before.isdigit():
        stmt = stmt.where(AuditEvent.id < int(before))
    with Session(state().engine) as db, db.begin():
        events = list(db.scalars(stmt.limit(PAGE + 1)))
        record(db, "console.audit.view", None, filters={"actor": actor, "action": action, "subject": subject})
        more = len(events) > PAGE
        events = events[:PAGE]
        rows = [
            (e.id, e.time, e.actor, (e.detail or {}).get("address"), e.action, e.subject,
             {k: v for k, v in (e.detail or {}).items() if k != "address"})
            for e in events
        ]  # fmt: skip
    args = {k: v for k, v in (("actor", actor), ("action", action), ("subject", subject)) if v}
    next_url = url_for("audit.log", **args, before=events[-1].id) if more and events else None
    return render_template("audit.html", rows=rows, args=args, next_url=next_url)
