"""The library learns from the DSL: suggest an overlay change from a false alarm, approve or reject it,
report a miss.

- On an incident whose outcome is ``false_alarm``, staff who record outcomes are offered, per library
  phrase that fired, an exception (the matched words and a few around them, editable) or the phrase's
  removal (``POST /incidents/UID/suggest``), and where it applies: everywhere, or, for a phrase that
  fired only on what a site sent, this site (its verified host and subdomains) or this page (host and
  path); a scoped change is a host-scoped overlay line, which never quiets what a pupil types. They
  decide what leaves the incident: the suggestion shows the network admin the phrase, the exception
  words, the scope, the host and the reason, never the capture.
- ``/library`` (roles with the ``library`` permission: network admin, DSL) lists pending suggestions;
  each is approved or rejected with a reason (``POST /library/suggestions/ID``). An approval is written
  to the school's overlay (``netmon.incidents.suggestions.apply_change``: checked by loading it first,
  written atomically; the proxy's library watcher reloads it); a refusal shows why and writes nothing.
- ``POST /misses`` (the queue page's "Report a miss"): text the monitor should have caught, its category
  and severity; kept in the store and rewritten to ``<overlay>/eval/console-misses.jsonl`` for
  ``netmon library eval``.

Every suggestion, decision, refusal and miss is audited (never the text itself).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from netmon_console.auth import record, require, state
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.errors import ConfigError
from netmon.incidents import queries
from netmon.incidents import suggestion_scope as scoping
from netmon.incidents import suggestions as core
from netmon.scan.library import Library, load_library
from netmon.scan.library_watch import signature
from netmon.store.base import utcnow
from netmon.store.incidents import Incident
from netmon.store.suggestions import (
    APPROVED,
    EXCEPTION,
    PENDING,
    REJECTED,
    REMOVAL,
    LibrarySuggestion,
    ReportedMiss,
)

bp = Blueprint("library", __name__)
REASON_MAX = 2000
TYPED_ONLY = (
    "A site or page scope only quiets what a site sent: this phrase fired on what the pupil typed, so "
    "only 'everywhere' applies."
)
MISS_MAX = 5000
_cache: dict[tuple[str, str], tuple[Any, Library]] = {}
_cache_lock = threading.Lock()


def current_library() -> Library | None:
    """The library plus the overlay as the proxy loads them (cached until a file changes); None when
    it does not load (the library page says why)."""
    config = state().config
    root, overlay = Path(config.library_root), config.overlay
    key = (str(root), str(overlay))
    stamp = signature(root, overlay)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        library = load_library(root, overlay)
    except ConfigError:
        return None
    with _cache_lock:
        _cache[key] = (stamp, library)
    return library


@bp.app_template_global()
def library_proposals(incident: Any) -> list[core.Proposal]:
    library = current_library()
    return core.proposals(incident, library) if library is not None else []


@bp.app_template_global()
def incident_suggestions(incident: Any) -> list[LibrarySuggestion]:
    with Session(state().engine) as db:
        stmt = select(LibrarySuggestion).where(LibrarySuggestion.incident_uid == incident.uid)
        return list(db.scalars(stmt.order_by(LibrarySuggestion.id)))


@bp.app_template_global()
def scope_choices(incident: Any) -> dict[str, str]:
    return scoping.scope_choices(incident)


@bp.app_template_global()
def suggestion_scope(row: LibrarySuggestion) -> str:
    """Where a suggestion applies, in plain words."""
    return scoping.describe_scope(scoping.scope_of(row))


@bp.app_template_global()
def suggestion_host(row: LibrarySuggestion) -> str:
    return scoping.fired_on(row)


@bp.app_template_global()
def library_categories() -> list[str]:
    library = current_library()
    return sorted(c.id for c in library.categories) if library is not None else []


def _text(name: str, limit: int) -> str:
    value = request.form.get(name, "").strip()
    if len(value) > limit:
        abort(400, f"{name} is longer than {limit} characters")
    return value


@bp.route("/incidents/<uid>/suggest", methods=["POST"])
@require("outcome")
def suggest(uid: str) -> Any:
    kind = request.form.get("kind", "")
    if kind not in (EXCEPTION, REMOVAL):
        abort(400, "kind must be exception or removal")
    reason = _text("reason", REASON_MAX)
    with Session(state().engine) as db, db.begin():
        incident = queries.incident_by_uid(db, uid[:32])
        if incident is None:
            abort(404)
        if not queries.in_scope(g.staff.scope, incident.year_group, incident.groups):
            record(db, "console.incident.refused", incident.uid, path=request.path)
            return abort(403)
        back = url_for("console.incident", uid=incident.uid) + "#suggest"
        if queries.review_state(db, incident.id).outcome != "false_alarm":
            return redirect(_with_error(back, "Record the outcome false alarm first."))
        library = current_library()
        phrase, category = request.form.get("phrase", ""), request.form.get("category", "")
        entry = core.find_entry(library, category, phrase) if library is not None else None
        offered = {(p.category, p.phrase): p for p in core.proposals(incident, library)} if library else {}
        proposal = offered.get((entry.category, entry.phrase)) if entry is not None else None
        if entry is None or proposal is None:
            return redirect(_with_error(back, "That phrase did not fire on this incident."))
        where = request.form.get("scope", scoping.EVERYWHERE)
        choices = scoping.scope_choices(incident)
        if where != scoping.EVERYWHERE and not proposal.scopable:
            return redirect(_with_error(back, TYPED_ONLY))
        if where != scoping.EVERYWHERE and where not in choices:
            return redirect(_with_error(back, "That scope is not offered for this incident."))
        scope = choices.get(where, "") if where != scoping.EVERYWHERE else ""
        exception = ""
        if kind == EXCEPTION:
            try:
                exception = core.check_exception(entry, request.form.get("exception", ""))
            except core.SuggestionError as exc:
                return redirect(_with_error(back, str(exc)))
        row = LibrarySuggestion(
            created_at=utcnow(), created_by=g.staff.username, incident_uid=incident.uid, kind=kind,
            category=entry.category, language=entry.language, phrase=entry.phrase, severity=entry.severity,
            library_file=entry.file, line=entry.line, exception=exception,
            **scoping.stored(incident.host, scope),
            reason=reason, status=PENDING, decision_reason="", overlay_file="",
        )  # fmt: skip
        db.add(row)
        db.flush()
        record(db, "console.suggestion.create", incident.uid, suggestion=row.id, kind=kind,
               category=entry.category, phrase=entry.phrase, scope=scope or scoping.EVERYWHERE)  # fmt: skip
    return redirect(back)


def _with_error(url: str, error: str) -> str:
    path, _, anchor = url.partition("#")
    return f"{path}?{_query(suggest_error=error)}" + (f"#{anchor}" if anchor else "")


def _query(**args: str) -> str:
    return urlencode(args)


def _of_my_site(stmt: Any) -> Any:
    """Suggestions from the incidents of the signed-in member of staff's site (all of them for the trust)."""
    site = getattr(g.staff, "site", "") or ""
    if not site:
        return stmt
    mine = select(Incident.uid).where(Incident.site == site)
    return stmt.where(LibrarySuggestion.incident_uid.in_(mine))


@bp.route("/library")
@require("library")
def suggestions_page() -> Any:
    config = state().config
    with Session(state().engine) as db, db.begin():
        pending = list(
            db.scalars(_of_my_site(select(LibrarySuggestion).where(LibrarySuggestion.status == PENDING))
                       .order_by(LibrarySuggestion.id))
        )  # fmt: skip
        decided = list(
            db.scalars(_of_my_site(select(LibrarySuggestion).where(LibrarySuggestion.status != PENDING))
                       .order_by(LibrarySuggestion.id.desc()).limit(50))
        )  # fmt: skip
        misses = db.query(ReportedMiss).count()
        record(db, "console.library.view", None, pending=len(pending))
        db.expunge_all()
    return render_template(
        "library.html", pending=pending, decided=decided, misses=misses, overlay=config.overlay,
        misses_file=(Path(config.overlay) / core.MISSES_FILE) if config.overlay else None,
        loads=current_library() is not None, error=request.args.get("error"),
        done=request.args.get("done"),
    )  # fmt: skip


@bp.route("/library/suggestions/<int:sid>", methods=["POST"])
@require("library")
def decide(sid: int) -> Any:
    decision = request.form.get("decision", "")
    if decision not in ("approve", "reject"):
        abort(400, "decision must be approve or reject")
    reason = _text("reason", REASON_MAX)
    page = url_for("library.suggestions_page")
    if not reason:
        return redirect(f"{page}?{_query(error='Give a reason for the decision.')}#s{sid}")
    config = state().config
    with Session(state().engine) as db, db.begin():
        row = db.scalar(_of_my_site(select(LibrarySuggestion).where(LibrarySuggestion.id == sid)))
        if row is None:
            if db.get(LibrarySuggestion, sid) is not None:
                record(db, "console.suggestion.denied", None, suggestion=sid, reason="another site")
                abort(403)
            abort(404)
        if row.status != PENDING:
            return redirect(f"{page}?{_query(error=f'Suggestion {sid} was already {row.status}.')}")
        written = ""
        if decision == "approve":
            change = core.Change(
                row.kind, row.category, row.phrase, row.exception,
                f"{utcnow():%Y-%m-%d} incident {row.incident_uid[:8]} on {suggestion_host(row) or '?'}: "
                f"suggested by {row.created_by}, approved by {g.staff.username}: "
                f"{' '.join(reason.split())[:200]}",
                scope=scoping.scope_of(row),
            )  # fmt: skip
            try:
                written = str(core.apply_change(Path(config.library_root), config.overlay, change))
            except core.SuggestionError as exc:
                record(db, "console.suggestion.refused", row.incident_uid, suggestion=sid, error=str(exc))
                return redirect(f"{page}?{_query(error=f'Suggestion {sid}: {exc}')}#s{sid}")
        row.status = APPROVED if decision == "approve" else REJECTED
        row.decided_at = utcnow()
        row.decided_by = g.staff.username
        row.decision_reason = reason
        row.overlay_file = written
        status = row.status
        record(db, f"console.suggestion.{'approve' if decision == 'approve' else 'reject'}",
               row.incident_uid, suggestion=sid, kind=row.kind, category=row.category, phrase=row.phrase,
               overlay_file=written)  # fmt: skip
    return redirect(f"{page}?{_query(done=f'Suggestion {sid} {status}.')}")


@bp.route("/misses", methods=["POST"])
@require("outcome")
def report_miss() -> Any:
    text = _text("text", MISS_MAX)
    category = request.form.get("category", "")
    severity = request.form.get("severity", "")
    note = _text("note", REASON_MAX)
    back = url_for("console.queue")
    if not text or category not in library_categories() or severity not in tuple("12345"):
        problem = "The text, a known category and a severity 1-5 are needed."
        return redirect(f"{back}?{_query(miss=problem)}#miss")
    config = state().config
    with Session(state().engine) as db, db.begin():
        row = ReportedMiss(
            created_at=utcnow(), created_by=g.staff.username, text=text, category=category,
            min_severity=int(severity), language="", note=note,
        )  # fmt: skip
        db.add(row)
        db.flush()
        written = ""
        if config.overlay is not None and Path(config.overlay).is_dir():
            written = str(core.write_misses(Path(config.overlay), db.scalars(select(ReportedMiss))))
        record(db, "console.miss.report", None, miss=row.id, category=category, severity=int(severity),
               file=written)  # fmt: skip
    return redirect(f"{back}?{_query(miss='Thank you: the miss is kept for the library evaluation.')}#miss")
