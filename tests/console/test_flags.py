"""Pupil timeline flags on the incident page: repetition (a third incident of a category in 7 days) and
escalation (severity rising)."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from netmon.incidents import queries
from netmon.store.db import make_engine
from tests.console.conftest import STAFF, add_incidents, make_incident, sign_in, when


def _flags(url: str, uid: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    with Session(engine) as db:
        incident = queries.incident_by_uid(db, uid)
        assert incident is not None
        flags = [(f.kind, f.text) for f in queries.pupil_flags(db, incident)]
    engine.dispose()
    return flags


def test_third_self_harm_incident_in_a_week_is_flagged(console_db: str) -> None:
    uids = add_incidents(
        console_db,
        [
            make_incident(time=when(days=-10), category="self-harm", severity=4),  # outside the week
            make_incident(time=when(days=-6), category="self-harm", severity=4),
            make_incident(time=when(days=-2), category="self-harm", severity=4),
            make_incident(time=when(days=-1), category="bullying", severity=4, user="bob"),  # another pupil
            make_incident(time=when(), category="self-harm", severity=4),
        ],
    )
    assert _flags(console_db, uids[-1]) == [("repetition", "3rd self-harm incident for this pupil in 7 days")]
    assert _flags(console_db, uids[2]) == []  # at the second, only two in the week


def test_rising_severity_is_flagged(console_db: str) -> None:
    uids = add_incidents(
        console_db,
        [
            make_incident(time=when(days=-5), category="bullying", severity=2),
            make_incident(time=when(days=-3), category="violence", severity=3),
            make_incident(time=when(), category="suicide", severity=5),
            make_incident(time=when(days=1), category="suicide", severity=3),
        ],
    )
    assert _flags(console_db, uids[2]) == [("escalation", "severity rising: 2 → 3 → 5 (last 30 days)")]
    assert _flags(console_db, uids[3]) == []  # falling again


def test_flags_shown_on_the_incident_page_to_content_roles_only(client: FlaskClient, console_db: str) -> None:
    uids = add_incidents(
        console_db, [make_incident(time=when(days=-d), category="suicide", severity=5) for d in (2, 1, 0)]
    )
    sign_in(client, STAFF["dsl"])
    page = client.get(f"/incidents/{uids[-1]}").text
    assert 'id="flags"' in page and "3rd suicide incident for this pupil in 7 days" in page
    other = client.application.test_client()
    sign_in(other, STAFF["netadmin"])
    assert 'id="flags"' not in other.get(f"/incidents/{uids[-1]}").text
