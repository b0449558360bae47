"""Escalation: a severity-5 alert nobody acknowledged in the console goes to the next contact.

A rule with ``escalate_after: 15m`` and ``escalation: [deputy, head]`` stores its plan on the alert row it
creates for a severity-5 incident (``detail["escalate"]``). The sender calls :func:`escalate_due`
periodically (in a thread, never in a hook): while the incident's review status is still ``new``
(acknowledging in the console moves it to ``in_review``), each ``escalate_after`` after the previous step
it writes the next step as a new outbox row, ``rule`` ``<rule>!escalate<N>``. The outbox's unique
(rule, incident) pair makes each step exactly once, even with two senders; the row is then delivered
and retried like any alert.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from netmon.config.values import format_duration
from netmon.store.alerts import PENDING, SENT, Alert
from netmon.store.base import utcnow
from netmon.store.console import NEW, IncidentReview
from netmon.store.incidents import Incident, audit

log = logging.getLogger(__name__)

MARK = "!escalate"
ESCALATE_SEVERITY = 5
#: Alerts older than this are not looked at again (a step is due long before).
HORIZON = timedelta(days=3)


def plan(rule: Any, severity: int) -> dict[str, Any] | None:
    """The escalation plan stored on a new alert of ``rule`` (None: this alert does not escalate)."""
    if severity < ESCALATE_SEVERITY or not rule.escalation or rule.escalate_after is None:
        return None
    return {
        "after": int(rule.escalate_after.total_seconds()),
        "steps": [list(step) for step in rule.escalation],
    }


def acknowledged(session: Session, incident_uid: str) -> bool:
    """Someone took the incident up in the console: its review status is no longer ``new``."""
    status = session.scalar(
        select(IncidentReview.status)
        .join(Incident, Incident.id == IncidentReview.incident_id)
        .where(Incident.uid == incident_uid)
    )
    return status is not None and status != NEW


def escalate_due(engine: Engine, now: datetime | None = None) -> int:
    """Write every escalation step that is due; returns how many were written."""
    now = now or utcnow()
    with Session(engine) as session:
        candidates = list(
            session.scalars(
                select(Alert).where(
                    Alert.state.in_((PENDING, SENT)),
                    Alert.created_at >= now - HORIZON,
                    cast(Alert.detail, String).like('%"escalate"%'),
                )
            )
        )
        session.expunge_all()
    written = 0
    for alert in candidates:
        try:
            written += _step(engine, alert, now)
        except IntegrityError:
            log.debug("escalation of %s written by another sender", alert.uid)
    return written


def _step(engine: Engine, alert: Alert, now: datetime) -> int:
    raw = (alert.detail or {}).get("escalate") or {}
    steps = [tuple(s) for s in raw.get("steps") or [] if s]
    after = timedelta(seconds=int(raw.get("after") or 0))
    if not steps or after <= timedelta(0):
        return 0
    with Session(engine) as session, session.begin():
        done = session.execute(
            select(Alert.rule, Alert.created_at).where(
                Alert.incident_uid == alert.incident_uid, Alert.rule.like(f"{alert.rule}{MARK}%")
            )
        ).all()
        if len(done) >= len(steps):
            return 0
        last = max([alert.created_at, *(row.created_at for row in done)])
        if now < last + after or acknowledged(session, alert.incident_uid):
            return 0
        number = len(done) + 1
        waited = format_duration(after * number)
        row = Alert(
            uid=uuid.uuid4().hex, created_at=now, rule=f"{alert.rule}{MARK}{number}", urgency="immediate",
            state=PENDING, incident_uid=alert.incident_uid, pupil=alert.pupil, site=alert.site,
            recipients=list(steps[number - 1]), attempts=0, next_attempt=now,
            reason=f"escalation {number} of {len(steps)}: not acknowledged in the console within "
            f"{waited} of alert {alert.uid}; {alert.reason}",
            detail={"minimal": bool((alert.detail or {}).get("minimal")), "escalation_step": number,
                    "escalation_steps": len(steps), "escalated_from": alert.uid, "waited": waited},
        )  # fmt: skip
        session.add(row)
        session.flush()
        uid = row.uid
        audit(session, "alert.escalated", actor="system", subject=uid, rule=row.rule, step=number,
              incident=alert.incident_uid, recipients=row.recipients, parent=alert.uid)  # fmt: skip
    log.info("alert %s not acknowledged: escalation %d written as %s", alert.uid, number, uid)
    return 1
