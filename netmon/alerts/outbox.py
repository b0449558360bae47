"""The outbox: alerts are written to the store first, then claimed, sent and marked by a sender.

Rows are created by :func:`add_alert` inside the incident writer's transaction. A sender claims due rows
(:func:`claim_due`: ``claimed_by`` set and ``next_attempt`` pushed forward as a lease), delivers them and
records the result (:func:`mark_sent` / :func:`mark_failed`), each step audited. A crashed sender's claims
expire with the lease, or are released at once by the next sender on the same host.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.orm import Session

from netmon.config.alert_rules import next_digest
from netmon.store.alerts import PENDING, SENT, SUPPRESSED, Alert
from netmon.store.base import utcnow
from netmon.store.incidents import Incident, audit

if TYPE_CHECKING:
    from netmon.config.alert_rules import Rule
    from netmon.config.policy import Policy

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
_INCIDENT_FIELDS = (
    "uid",
    "time",
    "last_seen",
    "count",
    "site",
    "client_ip",
    "mac",
    "user",
    "role",
    "year_group",
    "groups",
    "device",
    "host",
    "url",
    "source",
    "category",
    "severity",
    "phrase",
    "phrases",
    "excerpt",
    "explanation",
)


@dataclass(frozen=True, slots=True)
class Job:
    """One e-mail to send: an immediate alert, or a digest of several alerts of one rule."""

    alert_ids: tuple[int, ...]
    alert_uids: tuple[str, ...]
    rule: str
    urgency: str
    recipients: tuple[str, ...]
    reasons: tuple[str, ...]
    incidents: tuple[dict[str, Any], ...]  # plain incident fields, one per alert
    folded: tuple[dict[str, Any], ...] = ()  # incidents folded in by the cool-down (uid, time, category...)
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        """``mail`` or ``webhook`` (``netmon.alerts.channels``)."""
        return str(self.extra.get("channel") or "mail")

    @property
    def key(self) -> str:
        if self.urgency == "immediate" and len(self.alert_uids) == 1:
            return self.alert_uids[0]
        digest = hashlib.sha256(",".join(sorted(self.alert_uids)).encode()).hexdigest()[:24]
        return f"digest-{digest}"


def new_token() -> str:
    """Identifies one sender: host, process id and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def add_alert(
    session: Session,
    *,
    rule: Rule,
    incident: Incident,
    pupil: str,
    recipients: tuple[str, ...],
    reason: str,
    policy: Policy,
    parent: Alert | None = None,
    now: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> Alert:
    """Write one alert row (or a suppressed row under ``parent``) and its audit event; never commits."""
    now = now or utcnow()
    alert = Alert(
        uid=uuid.uuid4().hex,
        created_at=now,
        rule=rule.name,
        urgency=rule.urgency,
        incident_uid=incident.uid,
        pupil=pupil[:150],
        site=incident.site or "",
        recipients=list(recipients),
        reason=reason,
        attempts=0,
        detail=dict(detail or {}),
    )
    if parent is not None:
        alert.state = SUPPRESSED
        alert.parent_id = parent.id
        alert.next_attempt = None
        session.add(alert)
        session.flush()
        audit(
            session,
            "alert.suppressed",
            actor="system",
            subject=alert.uid,
            rule=rule.name,
            incident=incident.uid,
            parent=parent.uid,
            cooldown_seconds=int(rule.cooldown.total_seconds()),
        )
        log.info(
            "alert %s (rule %s, incident %s) folded into %s by the cool-down",
            alert.uid,
            rule.name,
            incident.uid,
            parent.uid,
        )
        return alert
    alert.state = PENDING
    alert.next_attempt = now if rule.urgency == "immediate" else next_digest(now, policy)
    session.add(alert)
    session.flush()
    audit(
        session,
        "alert.created",
        actor="system",
        subject=alert.uid,
        rule=rule.name,
        incident=incident.uid,
        urgency=rule.urgency,
        recipients=list(recipients),
        category=incident.category,
        severity=incident.severity,
    )
    log.info(
        "alert %s created: rule %s, incident %s, %s %s",
        alert.uid,
        rule.name,
        incident.uid,
        incident.category,
        incident.severity,
    )
    return alert


def _incident_dict(incident: Incident | None, uid: str) -> dict[str, Any]:
    if incident is None:
        return {"uid": uid, "missing": True}
    return {name: getattr(incident, name) for name in _INCIDENT_FIELDS}


def release_stale_claims(engine: Engine, token: str) -> int:
    """Release claims of dead senders on this host (a crash or restart), so delivery resumes at once."""
    host, pid, _ = token.split(":", 2)
    released = 0
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(Alert.id, Alert.claimed_by).where(Alert.state == PENDING, Alert.claimed_by.is_not(None))
        ).all()
        for alert_id, claimed in rows:
            parts = str(claimed).split(":", 2)
            if len(parts) != 3 or parts[0] != host or claimed == token:
                continue
            other = int(parts[1]) if parts[1].isdigit() else -1
            if other != int(pid) and _alive(other):
                continue
            session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.claimed_by == claimed)
                .values(claimed_by=None, next_attempt=utcnow())
            )
            released += 1
    if released:
        log.info("released %d alert(s) claimed by a sender that is no longer running", released)
    return released


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_due(engine: Engine, token: str, *, now: datetime | None = None, limit: int = 50) -> list[Job]:
    """Claim pending alerts that are due and return them as jobs (digest alerts grouped per rule)."""
    now = now or utcnow()
    due = (Alert.state == PENDING) & (Alert.next_attempt <= now)
    with Session(engine) as session:  # a cheap read first: most polls find nothing to do
        if session.scalar(select(Alert.id).where(due).limit(1)) is None:
            return []
    lease_until = now + LEASE
    with Session(engine) as session, session.begin():
        # Claim with one UPDATE (no read before it in this transaction: SQLite takes the write lock at
        # once; PostgreSQL re-checks the outer conditions on rows another sender has just claimed).
        ids = select(Alert.id).where(due).order_by(Alert.next_attempt, Alert.id).limit(limit)
        session.execute(
            update(Alert)
            .where(Alert.id.in_(ids.scalar_subquery()), due)
            .values(claimed_by=token, next_attempt=lease_until)
            .execution_options(synchronize_session=False)
        )
        claimed = list(
            session.scalars(
                select(Alert)
                .where(Alert.claimed_by == token, Alert.next_attempt == lease_until, Alert.state == PENDING)
                .order_by(Alert.id)
            )
        )
        if not claimed:
            return []
        uids = {a.incident_uid for a in claimed}
        incidents = {i.uid: i for i in session.scalars(select(Incident).where(Incident.uid.in_(uids)))}
        folded_rows = session.execute(
            select(Alert.parent_id, Incident)
            .join(Incident, Incident.uid == Alert.incident_uid)
            .where(Alert.parent_id.in_([a.id for a in claimed]), Alert.state == SUPPRESSED)
            .order_by(Incident.time)
        ).all()
        folded: dict[int, list[dict[str, Any]]] = {}
        for parent_id, inc in folded_rows:
            folded.setdefault(int(parent_id or 0), []).append(
                {
                    "uid": inc.uid,
                    "time": inc.time,
                    "category": inc.category,
                    "severity": inc.severity,
                    "host": inc.host,
                    "source": inc.source,
                }
            )
        jobs: list[Job] = []
        digests: dict[tuple[str, tuple[str, ...]], list[Alert]] = {}
        for alert in claimed:
            if alert.urgency == "digest":
                digests.setdefault((alert.rule, tuple(alert.recipients)), []).append(alert)
                continue
            jobs.append(
                Job(
                    alert_ids=(alert.id,),
                    alert_uids=(alert.uid,),
                    rule=alert.rule,
                    urgency=alert.urgency,
                    recipients=tuple(alert.recipients),
                    reasons=(alert.reason,),
                    incidents=(_incident_dict(incidents.get(alert.incident_uid), alert.incident_uid),),
                    folded=tuple(folded.get(alert.id, ())),
                    attempts=alert.attempts,
                    extra=dict(alert.detail or {}),
                )
            )
        for (rule, recipients), group in digests.items():
            group.sort(key=lambda a: a.id)
            jobs.append(
                Job(
                    alert_ids=tuple(a.id for a in group),
                    alert_uids=tuple(a.uid for a in group),
                    rule=rule,
                    urgency="digest",
                    recipients=recipients,
                    reasons=tuple(a.reason for a in group),
                    incidents=tuple(
                        _incident_dict(incidents.get(a.incident_uid), a.incident_uid) for a in group
                    ),
                    folded=tuple(f for a in group for f in folded.get(a.id, ())),
                    attempts=max(a.attempts for a in group),
                    extra={"minimal": any((a.detail or {}).get("minimal") for a in group)},
                )
            )
        return jobs


def mark_sent(engine: Engine, job: Job, token: str, message_id: str) -> None:
    now = utcnow()
    with Session(engine) as session, session.begin():
        session.execute(
            update(Alert)
            .where(Alert.id.in_(job.alert_ids))
            .values(
                state=SENT,
                sent_at=now,
                message_id=message_id,
                claimed_by=None,
                next_attempt=None,
                attempts=Alert.attempts + 1,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        for uid, incident in zip(job.alert_uids, job.incidents, strict=True):
            audit(
                session,
                "alert.sent",
                actor="system",
                subject=uid,
                rule=job.rule,
                incident=incident["uid"],
                message_id=message_id,
                recipients=list(job.recipients),
                attempt=job.attempts + 1,
            )
    log.info(
        "alert(s) %s sent to %d recipient(s) as %s",
        ", ".join(job.alert_uids),
        len(job.recipients),
        message_id,
    )


#: Failure reasons that mean "the server could not be reached" (as written by the sender).
UNREACHABLE = ("cannot connect", "SMTP connection lost")


def _unreachable_waiting(now: datetime) -> Any:
    return (
        (Alert.state == PENDING)
        & (Alert.next_attempt > now)
        & Alert.claimed_by.is_(None)
        & or_(*(Alert.last_error.startswith(prefix) for prefix in UNREACHABLE))
    )


def waiting_for_server(engine: Engine) -> int:
    """How many alerts are waiting out a back-off because the mail server could not be reached."""
    with Session(engine) as session:
        return int(session.scalar(select(func.count(Alert.id)).where(_unreachable_waiting(utcnow()))) or 0)


def retry_now(engine: Engine) -> int:
    """The mail server is reachable again: make the alerts that waited for it due at once."""
    now = utcnow()
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(Alert)
            .where(_unreachable_waiting(now))
            .values(next_attempt=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def backoff(attempts: int, *, base: float = 2.0, cap: float = 30.0) -> timedelta:
    """Delay before attempt ``attempts + 1``: 2 s, 4 s, 8 s ... up to ``cap`` seconds."""
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempts - 1))))


def mark_failed(engine: Engine, job: Job, token: str, reason: str, *, cap: float = 30.0) -> datetime:
    """Record a failed attempt; the alerts stay pending and are retried after a back-off."""
    attempts = job.attempts + 1
    retry_at = utcnow() + backoff(attempts, cap=cap)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Alert)
            .where(Alert.id.in_(job.alert_ids), Alert.claimed_by == token)
            .values(claimed_by=None, next_attempt=retry_at, attempts=attempts, last_error=reason[:1000])
            .execution_options(synchronize_session=False)
        )
        for uid, incident in zip(job.alert_uids, job.incidents, strict=True):
            audit(
                session,
                "alert.failed",
                actor="system",
                subject=uid,
                rule=job.rule,
                incident=incident["uid"],
                reason=reason[:500],
                attempt=attempts,
                retry_at=retry_at.isoformat(),
            )
    log.warning(
        "alert(s) %s not delivered (attempt %d): %s; retrying at %s",
        ", ".join(job.alert_uids),
        attempts,
        reason,
        retry_at.isoformat(timespec="seconds"),
    )
    return retry_at
