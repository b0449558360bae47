"""Escalation: a severity-5 alert nobody acknowledges in the console goes to the next contact, once per step,
through the outbox (real SMTP server on loopback, asyncio debug mode)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.alerts.escalation import escalate_due
from netmon.alerts.mail import SmtpSettings
from netmon.alerts.sender import AlertSender
from netmon.config.alert_rules import parse_alerts
from netmon.config.checks import Problems
from netmon.config.policy import load_policy
from netmon.incidents.outcomes import ReviewChange, change_review
from netmon.store.alerts import Alert
from netmon.store.base import utcnow
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent, Incident

from .conftest import SmtpServer, write_policy
from .helpers import record, result, writer
from .test_delivery import stop, wait_for

POLICY = """
    recipients:
      dsl: [dsl@school.example]
      seniors: [head@school.example, chair@school.example]
    rules:
      - name: high-severity
        min_severity: 4
        to: [dsl]
        escalate_after: {after}
        escalation: [deputy@school.example, seniors]
"""


def _record(store_url: str, tmp_path: Path, after: str, severity: int = 5) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", POLICY.format(after=after)), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(user="alice", severity=severity, phrase="kms", category="suicide"))


def _rows(url: str) -> list[tuple[str, list[str]]]:
    engine = make_engine(url)
    with Session(engine) as db:
        rows = [(a.rule, list(a.recipients)) for a in db.scalars(select(Alert).order_by(Alert.id))]
    engine.dispose()
    return rows


def test_policy_parses_escalation_steps_in_order() -> None:
    problems = Problems()
    config = parse_alerts(
        {
            "recipients": {"seniors": ["head@school.example", "chair@school.example"]},
            "rules": [
                {"name": "r", "to": ["dsl@school.example"], "escalate_after": "15m",
                 "escalation": ["deputy@school.example", "seniors"]},
                {"name": "bad", "to": ["dsl@school.example"], "escalate_after": "soon",
                 "escalation": ["x@y.example"]},
                {"name": "lonely", "to": ["dsl@school.example"], "escalate_after": "5m"},
            ],
        },
        "alerts.yaml",
        problems,
        env={},
    )  # fmt: skip
    rule = config.rules[0]
    assert rule.escalate_after == timedelta(minutes=15)
    assert rule.escalation == (("deputy@school.example",), ("head@school.example", "chair@school.example"))
    where = [e.where for e in problems.errors]
    assert where == ["alerts.yaml: rules.bad.escalate_after", "alerts.yaml: rules.lonely.escalation"]


def test_each_step_once_after_its_wait_until_acknowledged(store_url: str, tmp_path: Path) -> None:
    _record(store_url, tmp_path, "15m")
    engine = make_engine(store_url)
    now = utcnow()
    assert escalate_due(engine, now + timedelta(minutes=14)) == 0
    assert escalate_due(engine, now + timedelta(minutes=16)) == 1
    assert escalate_due(engine, now + timedelta(minutes=16)) == 0  # exactly once
    assert escalate_due(engine, now + timedelta(minutes=30)) == 0  # the next step waits 15m after the first
    assert escalate_due(engine, now + timedelta(minutes=32)) == 1
    assert escalate_due(engine, now + timedelta(hours=3)) == 0  # no third contact
    assert _rows(store_url) == [
        ("high-severity", ["dsl@school.example"]),
        ("high-severity!escalate1", ["deputy@school.example"]),
        ("high-severity!escalate2", ["head@school.example", "chair@school.example"]),
    ]
    with Session(engine) as db:
        steps = [
            e.detail["step"]
            for e in db.scalars(select(AuditEvent).where(AuditEvent.action == "alert.escalated"))
        ]
    assert steps == [1, 2]
    engine.dispose()


def test_acknowledged_or_below_severity_5_does_not_escalate(store_url: str, tmp_path: Path) -> None:
    _record(store_url, tmp_path, "15m")
    engine = make_engine(store_url)
    with Session(engine) as db, db.begin():
        incident = db.scalars(select(Incident)).one()
        change_review(db, incident, "dina", ReviewChange(status="in_review"))
    assert escalate_due(engine, utcnow() + timedelta(hours=1)) == 0
    engine.dispose()


def test_severity_4_does_not_escalate(store_url: str, tmp_path: Path) -> None:
    _record(store_url, tmp_path, "15m", severity=4)
    engine = make_engine(store_url)
    assert escalate_due(engine, utcnow() + timedelta(hours=1)) == 0
    engine.dispose()


async def test_sender_escalates_unacknowledged_alert_to_each_contact(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    _record(store_url, tmp_path, "1s")
    sender = AlertSender(store_url, SmtpSettings.from_env(smtp_server.env()), poll=0.1, escalate_every=0.2)
    task = asyncio.create_task(sender.run())
    await wait_for(lambda: len(smtp_server.received) == 3)
    await asyncio.sleep(1.5)  # no further step, no duplicate
    await stop(sender, task)
    got = smtp_server.received
    assert [r.rcpt_tos for r in got] == [
        ["dsl@school.example"],
        ["deputy@school.example"],
        ["head@school.example", "chair@school.example"],
    ]
    assert str(got[1].message["Subject"]).startswith("[netmon] Escalated: Safeguarding alert: suicide")
    assert "ESCALATED: nobody has acknowledged this incident in the console" in got[1].part("plain")
    assert "escalation 2 of 2" in got[2].part("plain")
