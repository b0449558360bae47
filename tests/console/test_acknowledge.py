"""Acknowledging an incident in the console (which stops escalation) and review outcomes queued for the
school's record system (the signed webhook) when NETMON_WEBHOOK_URL is set."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.alerts.escalation import escalate_due
from netmon.store.alerts import PENDING, Alert
from netmon.store.base import utcnow
from netmon.store.db import make_engine
from tests.console.conftest import STAFF, add_incidents, csrf_of, make_incident, sign_in
from tests.console.test_auth import audit_rows


def _alert(url: str, uid: str) -> None:
    """A sent severity-5 alert with an escalation plan, as the rule engine writes it."""
    engine = make_engine(url)
    with Session(engine) as db, db.begin():
        db.add(
            Alert(
                uid="a" * 32, created_at=utcnow(), rule="high-severity", urgency="immediate", state="sent",
                incident_uid=uid, pupil="alice", site="", recipients=["dsl@school.example"], reason="r",
                attempts=1, detail={"escalate": {"after": 900, "steps": [["deputy@school.example"]]}},
            )
        )  # fmt: skip
    engine.dispose()


def _rules(url: str) -> list[str]:
    engine = make_engine(url)
    with Session(engine) as db:
        rules = [a.rule for a in db.scalars(select(Alert).order_by(Alert.id))]
    engine.dispose()
    return rules


def test_acknowledge_button_stops_escalation(client: FlaskClient, console_db: str) -> None:
    (uid,) = add_incidents(console_db, [make_incident()])
    _alert(console_db, uid)
    sign_in(client, STAFF["deputy"])
    page = client.get(f"/incidents/{uid}").text
    assert 'id="acknowledge"' in page
    r = client.post(f"/incidents/{uid}/acknowledge", data={"csrf": csrf_of(page)})
    assert r.status_code == 302
    page = client.get(f"/incidents/{uid}").text
    assert "<strong>in review</strong>" in page and 'id="acknowledge"' not in page
    assert "acknowledged" in page  # the note in the history
    assert [e.subject for e in audit_rows(console_db, "console.incident.acknowledge")] == [uid]
    engine = make_engine(console_db)
    assert escalate_due(engine, utcnow() + timedelta(hours=1)) == 0
    engine.dispose()


def test_unacknowledged_incident_escalates(console_db: str) -> None:
    (uid,) = add_incidents(console_db, [make_incident()])
    _alert(console_db, uid)
    engine = make_engine(console_db)
    assert escalate_due(engine, utcnow() + timedelta(minutes=16)) == 1
    engine.dispose()
    assert _rules(console_db) == ["high-severity", "high-severity!escalate1"]


def test_acknowledge_needs_csrf_and_an_outcome_role(client: FlaskClient, console_db: str) -> None:
    (uid,) = add_incidents(console_db, [make_incident()])
    sign_in(client, STAFF["netadmin"])
    page = client.get(f"/incidents/{uid}").text
    assert 'id="acknowledge"' not in page
    assert client.post(f"/incidents/{uid}/acknowledge", data={"csrf": "nope"}).status_code == 400
    assert client.post(f"/incidents/{uid}/acknowledge", data={"csrf": csrf_of(page)}).status_code == 403


def test_outcome_is_queued_for_the_record_system(app: Flask, client: FlaskClient, console_db: str) -> None:
    app.extensions["netmon_console"].config.webhook_url = "http://127.0.0.1:9/cpoms"
    (uid,) = add_incidents(console_db, [make_incident()])
    sign_in(client, STAFF["dsl"])
    token = csrf_of(client.get(f"/incidents/{uid}").text)
    client.post(f"/incidents/{uid}/review", data={"csrf": token, "note": "a note only"})  # not an outcome
    client.post(f"/incidents/{uid}/review", data={"csrf": token, "status": "closed", "outcome": "no_concern"})
    engine = make_engine(console_db)
    with Session(engine) as db:
        rows = db.scalars(select(Alert)).all()
        assert len(rows) == 1 and rows[0].rule.startswith("webhook:outcome:") and rows[0].state == PENDING
        data = rows[0].detail["data"]
        assert (data["status"], data["outcome"], data["actor"]) == ("closed", "no_concern", "dina")
        assert rows[0].recipients == ["http://127.0.0.1:9/cpoms"]
    engine.dispose()
