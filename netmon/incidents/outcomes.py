"""Recording what was done about an incident: status, outcome, assignment and notes, kept as history.

:func:`change_review` is the one write path: it validates the change (a known status and outcome; closing
needs an outcome), updates the incident's ``incident_reviews`` row and appends one ``incident_changes``
row naming who changed what. Both carry the incident's site (a trust's store holds every school's
incidents; a school's staff see their own). The caller commits and writes the audit event (it knows the
address).
:func:`queue_outcome_webhook` queues the change for the school's record system (the signed webhook of
:mod:`netmon.alerts.channels`) in the same transaction, so it is posted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from netmon.alerts.channels import add_webhook
from netmon.errors import NetmonError
from netmon.store.base import utcnow
from netmon.store.console import CLOSED, NEW, OUTCOMES, STATUSES, IncidentChange, IncidentReview
from netmon.store.incidents import Incident

NOTE_MAX = 10_000


class ReviewError(NetmonError):
    """A review change that is not allowed (unknown status or outcome, closing without an outcome)."""


@dataclass(frozen=True, slots=True)
class ReviewChange:
    """What to change; None leaves a field as it is, "" clears the outcome or the assignee."""

    status: str | None = None
    outcome: str | None = None
    assignee: str | None = None
    note: str = ""


def change_review(
    session: Session, incident: Incident, actor: str, change: ReviewChange
) -> IncidentChange | None:
    """Apply ``change`` by ``actor``; returns the history row, or None when nothing changed."""
    if change.status is not None and change.status not in STATUSES:
        raise ReviewError(f"status must be one of {', '.join(STATUSES)} (got {change.status!r})")
    if change.outcome and change.outcome not in OUTCOMES:
        raise ReviewError(f"outcome must be one of {', '.join(OUTCOMES)} (got {change.outcome!r})")
    note = change.note.strip()
    if len(note) > NOTE_MAX:
        raise ReviewError(f"the note is longer than {NOTE_MAX} characters")
    review = session.get(IncidentReview, incident.id)
    if review is None:
        review = IncidentReview(incident_id=incident.id, status=NEW, outcome=None, assignee=None)
    review.site = incident.site or ""
    new = {
        "status": change.status if change.status is not None else review.status,
        "outcome": (change.outcome or None) if change.outcome is not None else review.outcome,
        "assignee": (change.assignee or None) if change.assignee is not None else review.assignee,
    }
    if new["status"] == CLOSED and not new["outcome"]:
        raise ReviewError("closing an incident needs an outcome")
    changes = {
        name: [getattr(review, name), value] for name, value in new.items() if getattr(review, name) != value
    }
    if not changes and not note:
        return None
    now = utcnow()
    for name, value in new.items():
        setattr(review, name, value)
    review.updated_at = now
    review.updated_by = actor
    if review.first_reviewed_at is None:
        review.first_reviewed_at = now
    session.add(review)
    entry = IncidentChange(
        incident_id=incident.id, time=now, actor=actor, changes=changes, note=note, site=incident.site or ""
    )
    session.add(entry)
    return entry


def queue_outcome_webhook(session: Session, incident: Incident, entry: IncidentChange, url: str) -> bool:
    """Queue one webhook post of the review change ``entry`` (flushed first for its id); never commits."""
    session.flush()
    review = session.get(IncidentReview, incident.id)
    data = {
        "change_id": entry.id, "time": entry.time, "actor": entry.actor, "changes": entry.changes,
        "note": entry.note, "status": review.status if review else NEW,
        "outcome": review.outcome if review else None, "assignee": review.assignee if review else None,
        "category": incident.category, "severity": incident.severity, "user": incident.user,
    }  # fmt: skip
    row = add_webhook(
        session, kind="outcome", incident_uid=incident.uid, url=url, key=str(entry.id),
        pupil=incident.user or incident.client_ip, site=incident.site or "", data=data,
    )  # fmt: skip
    return row is not None
