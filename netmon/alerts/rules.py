"""The alert rule engine: turns new incidents into outbox rows, in the incident's own transaction.

The rules themselves (``policy/alerts.yaml``: :class:`Rule`, :func:`parse_alerts`, ...) are configuration
and live in :mod:`netmon.config.alert_rules`; they are re-exported here for callers of the old names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from netmon.alerts import escalation
from netmon.alerts.channels import add_webhook, check_url
from netmon.alerts.outbox import add_alert
from netmon.config.alert_rules import (
    AlertsConfig,
    Repeat,
    Rule,
    next_digest,
    parse_alerts,
)
from netmon.config.values import expand_addresses, format_duration, parse_duration
from netmon.ops import counters
from netmon.store.alerts import SUPPRESSED, Alert
from netmon.store.base import utcnow
from netmon.store.incidents import Incident, audit

if TYPE_CHECKING:
    from netmon.config.policy import Policy

__all__ = [
    "AlertsConfig",
    "Repeat",
    "Rule",
    "RuleEngine",
    "expand_addresses",
    "format_duration",
    "next_digest",
    "parse_alerts",
    "parse_duration",
]

log = logging.getLogger(__name__)


def _same_pupil(incident: Incident) -> Any:
    """The same pupil at the same school: schools of a trust reuse names' addresses, so never across sites."""
    site = Incident.site == (incident.site or "")
    if incident.user:
        return and_(site, Incident.user == incident.user)
    return and_(site, Incident.user.is_(None), Incident.client_ip == incident.client_ip)


class RuleEngine:
    """Evaluates the rules for a batch of incidents and writes outbox rows in the same transaction.

    Give it to the incident writer as an ``after_batch`` callable: ``IncidentWriter(url,
    after_batch=(RuleEngine(lambda: watcher.current),))``. It never commits.
    """

    def __init__(self, policy: Policy | Callable[[], Policy], webhook_url: str | None = None) -> None:
        self._policy = policy if callable(policy) else (lambda: policy)
        url = os.environ.get("NETMON_WEBHOOK_URL", "") if webhook_url is None else webhook_url
        self.webhook_url = check_url(url.strip()) if url.strip() else ""

    def __call__(self, session: Any, incidents: Sequence[Incident]) -> list[Alert]:
        policy = self._policy()
        if not policy.rules or not incidents:
            return []
        session.flush()
        created: list[Alert] = []
        now = utcnow()
        for incident in sorted(incidents, key=lambda i: (i.time, i.id)):
            try:
                created.extend(self._evaluate(session, policy, incident, now))
            except SQLAlchemyError:
                raise  # the store is at fault: the writer keeps the whole batch and retries
            except Exception as exc:  # noqa: BLE001 - a rule fault must never lose the incident it is about
                counters.incr("alerts.rule-errors")
                log.exception(
                    "alert rules failed for incident %s; it is recorded without an alert", incident.uid
                )
                audit(
                    session, "alert.error", actor="system", subject=incident.uid, error=exc.__class__.__name__
                )
        return created

    def _evaluate(self, session: Any, policy: Policy, incident: Incident, now: datetime) -> list[Alert]:
        created: list[Alert] = []
        groups = policy.groups_for(incident.user, incident.role, incident.year_group, incident.groups or ())
        for rule in policy.rules:
            if not rule.enabled or not rule.matches(incident, groups, policy):
                continue
            done = session.scalar(
                select(Alert.id).where(Alert.rule == rule.name, Alert.incident_uid == incident.uid)
            )
            if done is not None:
                continue
            pupil = incident.user or incident.client_ip
            repeat_count = None
            if rule.repeat is not None:
                repeat_count = self._repeat_count(session, rule, incident, groups, policy, pupil)
                if repeat_count < rule.repeat.count:
                    continue
            if rule.webhook and self.webhook_url:
                add_webhook(
                    session, kind="incident", incident_uid=incident.uid, url=self.webhook_url,
                    pupil=pupil, site=incident.site or "",
                )  # fmt: skip
            recipients = rule.recipients_for(groups, incident.site)
            if not recipients:
                log.debug("rule %s fired for incident %s but has no recipients", rule.name, incident.uid)
                continue
            parent = None
            if rule.cooldown > timedelta(0):
                parent = session.scalar(
                    select(Alert)
                    .where(
                        Alert.rule == rule.name,
                        Alert.pupil == pupil,
                        Alert.site == (incident.site or ""),
                        Alert.state != SUPPRESSED,
                        Alert.created_at >= now - rule.cooldown,
                    )
                    .order_by(Alert.id.desc())
                    .limit(1)
                )
            reason = "; ".join(rule.reasons(incident, groups, repeat_count))
            detail: dict[str, Any] = {"minimal": True} if rule.minimal else {}
            steps = escalation.plan(rule, rule.severity_of(incident) or 0) if parent is None else None
            if steps is not None:
                detail["escalate"] = steps
            alert = add_alert(
                session,
                rule=rule,
                incident=incident,
                pupil=pupil,
                recipients=recipients,
                reason=reason,
                policy=policy,
                parent=parent,
                now=now,
                detail=detail,
            )
            created.append(alert)
        return created

    @staticmethod
    def _repeat_count(
        session: Any, rule: Rule, incident: Incident, groups: frozenset[str], policy: Policy, pupil: str
    ) -> int:
        assert rule.repeat is not None
        since = incident.time - rule.repeat.within
        last = session.execute(
            select(Incident.time, Incident.id)
            .join(Alert, Alert.incident_uid == Incident.uid)
            .where(
                Alert.rule == rule.name,
                Alert.pupil == pupil,
                Alert.site == (incident.site or ""),
                Alert.state != SUPPRESSED,
            )
            .order_by(Incident.time.desc(), Incident.id.desc())
            .limit(1)
        ).first()
        query = select(Incident).where(
            _same_pupil(incident),
            Incident.time >= since,
            or_(
                Incident.time < incident.time,
                and_(Incident.time == incident.time, Incident.id <= incident.id),
            ),
        )
        if last is not None:
            query = query.where(
                or_(Incident.time > last.time, and_(Incident.time == last.time, Incident.id > last.id))
            )
        rows = session.scalars(query.order_by(Incident.time).limit(10_000)).all()
        return sum(1 for row in rows if rule.matches(row, groups, policy))
