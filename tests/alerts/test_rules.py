"""Alert rules over the real incident writer and a real SQLite store: what fires, for whom, and when."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.alerts.rules import next_digest
from netmon.config.policy import load_policy
from netmon.store.alerts import Alert
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent, Incident

from .conftest import write_policy
from .helpers import record, result, writer

ENV = {"NETMON_ALERT_TO": "dsl@school.example"}


def alerts(url: str) -> list[Alert]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = list(session.scalars(select(Alert).order_by(Alert.id)))
    engine.dispose()
    return rows


def incident_uids(url: str) -> list[str]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = list(session.scalars(select(Incident.uid).order_by(Incident.id)))
    engine.dispose()
    return rows


def test_default_policy_alerts_severity_4_and_up(store_url: str, tmp_path: Path) -> None:
    from netmon.config.paths import DEFAULT_POLICY_DIR

    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    with writer(store_url, policy, tmp_path) as w:
        record(
            w,
            result(severity=3, phrase="sad", url="https://e.org/1"),
            result(severity=4, url="https://e.org/2"),
            result(severity=5, phrase="kms", url="https://e.org/3"),
        )
    rows = alerts(store_url)
    uids = incident_uids(store_url)
    assert [a.incident_uid for a in rows] == uids[1:]
    assert all(a.recipients == ["dsl@school.example"] and a.urgency == "immediate" for a in rows)
    assert all(a.state == "pending" for a in rows)


def test_default_policy_without_alert_to_creates_no_alerts(store_url: str, tmp_path: Path) -> None:
    from netmon.config.paths import DEFAULT_POLICY_DIR

    policy = load_policy(DEFAULT_POLICY_DIR, env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(severity=5))
    assert alerts(store_url) == []
    assert len(incident_uids(store_url)) == 1


def test_alert_row_commits_with_its_incident_and_is_audited(store_url: str, tmp_path: Path) -> None:
    from netmon.config.paths import DEFAULT_POLICY_DIR

    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(severity=5))
    (alert,) = alerts(store_url)
    engine = make_engine(store_url)
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.created")).all()
    engine.dispose()
    assert [e.subject for e in events] == [alert.uid]
    assert events[0].detail["incident"] == alert.incident_uid
    assert "cut myself" not in str(events[0].detail)


ROUTING = """
    recipients:
      dsl: [dsl@school.example]
    rules:
      - name: year7
        groups: [year7]
        min_severity: 2
        to: [head.y7@school.example]
      - name: by-site-and-group
        min_severity: 3
        to: [dsl]
        to_groups: {sixth-form: [head.sixth@school.example]}
        to_sites: {north: [north.dsl@school.example]}
      - name: chat-only
        sources: [chat]
        categories: [bullying]
        to: [anti.bullying@school.example]
"""


def test_routing_by_group_site_source_and_category(store_url: str, tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", ROUTING), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(user="y7kid", year_group="7", severity=2, url="https://e.org/1"))
        record(w, result(user="sixth", year_group="13", severity=3, site="north", url="https://e.org/2"))
        record(
            w,
            result(
                user="bully",
                category="bullying",
                phrase="loser",
                severity=2,
                source="chat",
                url="https://e.org/3",
            ),
        )
        record(
            w,
            result(
                user="bully",
                category="bullying",
                phrase="loser",
                severity=2,
                source="page",
                url="https://e.org/4",
            ),
        )
    got = {(a.rule, tuple(a.recipients)) for a in alerts(store_url)}
    assert got == {
        ("year7", ("head.y7@school.example",)),
        (
            "by-site-and-group",
            ("dsl@school.example", "head.sixth@school.example", "north.dsl@school.example"),
        ),
        ("chat-only", ("anti.bullying@school.example",)),
    }


REPEAT = """
    rules:
      - name: repeated
        categories: [self_harm]
        min_severity: 2
        repeat: {count: 3, within: 1h}
        to: [dsl@school.example]
"""


def test_repetition_fires_on_the_nth_incident_and_not_before(store_url: str, tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", REPEAT), env={})
    t0 = time.time() - 600
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(url="https://e.org/1", t=t0))
        record(w, result(url="https://e.org/2", t=t0 + 60))
        record(w, result(user="other", url="https://e.org/x", t=t0 + 70))  # another pupil: not counted
        record(w, result(url="https://e.org/y", t=t0 + 80, category="gambling", phrase="bet"))  # not counted
        assert alerts(store_url) == []
        record(w, result(url="https://e.org/3", t=t0 + 120))
        rows = alerts(store_url)
        assert len(rows) == 1
        assert "3 matching incidents" in rows[0].reason
        third = incident_uids(store_url)[4]
        assert rows[0].incident_uid == third
        record(w, result(url="https://e.org/4", t=t0 + 180), result(url="https://e.org/5", t=t0 + 240))
        assert len(alerts(store_url)) == 1  # counting starts again after an alert
        record(w, result(url="https://e.org/6", t=t0 + 300))
        assert len(alerts(store_url)) == 2


def test_repetition_window(store_url: str, tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", REPEAT), env={})
    t0 = time.time() - 10_000
    with writer(store_url, policy, tmp_path) as w:
        record(
            w,
            result(url="https://e.org/1", t=t0),
            result(url="https://e.org/2", t=t0 + 4000),
            result(url="https://e.org/3", t=t0 + 8000),
        )
    assert alerts(store_url) == []


def test_a_batch_of_three_fires_once_on_the_third(store_url: str, tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", REPEAT), env={})
    t0 = time.time() - 600
    with writer(store_url, policy, tmp_path) as w:
        record(w, *(result(url=f"https://e.org/{i}", t=t0 + i) for i in range(3)))
    rows = alerts(store_url)
    assert len(rows) == 1 and rows[0].incident_uid == incident_uids(store_url)[2]


HOURS = """
    rules:
      - name: night
        when: out_of_hours
        to: [dsl@school.example]
      - name: day
        when: in_hours
        to: [dsl@school.example]
"""


@pytest.mark.parametrize(
    ("local", "rule"),
    [
        ("2026-11-25 10:00", "day"),  # Wednesday morning
        ("2026-11-25 22:30", "night"),
        ("2026-11-28 11:00", "night"),  # Saturday
        ("2026-07-01 07:30", "night"),  # summer time: 06:30 UTC, before school
        ("2026-07-01 16:30", "day"),  # 15:30 UTC in British Summer Time
    ],
)
def test_time_of_day_in_europe_london(store_url: str, tmp_path: Path, local: str, rule: str) -> None:
    from zoneinfo import ZoneInfo

    policy = load_policy(write_policy(tmp_path / "policy", HOURS), env={})
    when = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo("Europe/London"))
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(t=when.timestamp()))
    assert [a.rule for a in alerts(store_url)] == [rule]


COOLDOWN = """
    rules:
      - name: calm
        cooldown: 10m
        to: [dsl@school.example]
"""


def test_cooldown_folds_a_pupils_burst_into_one_alert(store_url: str, tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", COOLDOWN), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, *(result(url=f"https://e.org/{i}") for i in range(4)))
        record(w, result(user="other", url="https://e.org/o"))
    rows = alerts(store_url)
    assert [a.state for a in rows if a.pupil == "pupil1"] == [
        "pending",
        "suppressed",
        "suppressed",
        "suppressed",
    ]
    first = rows[0]
    assert all(a.parent_id == first.id for a in rows[1:4])
    assert [a.state for a in rows if a.pupil == "other"] == ["pending"]


def test_one_pupil_name_at_two_schools_of_a_trust_is_two_pupils(store_url: str, tmp_path: Path) -> None:
    """A trust's schools reuse pupil names and private addresses: cooldown and repetition stay per site."""
    policy = load_policy(write_policy(tmp_path / "policy", COOLDOWN), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(url="https://e.org/a", site="north"), result(url="https://e.org/b", site="north"))
        record(w, result(url="https://e.org/c", site="south"))
    rows = alerts(store_url)
    assert [(a.site, a.state) for a in rows] == [
        ("north", "pending"),
        ("north", "suppressed"),
        ("south", "pending"),  # not folded into north's alert
    ]
    policy = load_policy(write_policy(tmp_path / "policy2", REPEAT), env={})
    t0 = time.time() - 600
    with writer(store_url, policy, tmp_path) as w:
        record(w, *(result(user="sam", url=f"https://e.org/n{i}", t=t0 + i, site="north") for i in range(2)))
        record(w, result(user="sam", url="https://e.org/s", t=t0 + 5, site="south"))
        assert not [a for a in alerts(store_url) if a.pupil == "sam"]  # 2 + 1 at two schools: not 3 at one


def test_repeat_visits_of_one_page_are_one_alert(store_url: str, tmp_path: Path) -> None:
    from netmon.config.paths import DEFAULT_POLICY_DIR

    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(), result())
        record(w, result())
    assert len(incident_uids(store_url)) == 1
    assert len(alerts(store_url)) == 1


DIGEST = """
    digest:
      at: ["07:30", "16:30"]
    rules:
      - name: later
        urgency: digest
        to: [dsl@school.example]
"""


def test_digest_alerts_wait_for_the_next_digest_time(store_url: str, tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", DIGEST), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result())
    (row,) = alerts(store_url)
    assert row.urgency == "digest" and row.next_attempt is not None
    assert row.next_attempt > datetime.now(UTC)
    from zoneinfo import ZoneInfo

    local = row.next_attempt.astimezone(ZoneInfo("Europe/London"))
    assert (local.hour, local.minute) in {(7, 30), (16, 30)}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-25 06:00", "2026-11-25 07:30"),
        ("2026-11-25 07:30", "2026-11-25 16:30"),
        ("2026-11-25 20:00", "2026-11-26 07:30"),
        ("2026-03-29 00:30", "2026-03-29 07:30"),  # clocks go forward that night
    ],
)
def test_next_digest(tmp_path: Path, now: str, expected: str) -> None:
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    policy = load_policy(write_policy(tmp_path / "policy", DIGEST), env={})
    got = next_digest(datetime.strptime(now, "%Y-%m-%d %H:%M").replace(tzinfo=london).astimezone(UTC), policy)
    assert got.astimezone(london).strftime("%Y-%m-%d %H:%M") == expected
    assert got - datetime.strptime(now, "%Y-%m-%d %H:%M").replace(tzinfo=london) < timedelta(days=1)


def test_odd_incident_data_never_breaks_the_batch(store_url: str, tmp_path: Path) -> None:
    import uuid

    from netmon.alerts.rules import RuleEngine

    policy = load_policy(write_policy(tmp_path / "policy", COOLDOWN.replace("10m", "0")), env={})
    now = datetime.now(UTC)
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        incident = Incident(
            uid=uuid.uuid4().hex,
            time=now,
            last_seen=now,
            count=1,
            site="",
            client_ip="10.0.0.1",
            user=None,
            groups=None,
            host="h",
            url="u",
            source="page",
            category="suicide",
            severity=5,
            phrase="p",
            phrases=[{"severity": "x"}, "junk"],
            excerpt="",
            explanation=[],
            evidence={},
            dedup_key="k",
            capture_text="",
        )
        session.add(incident)
        RuleEngine(policy)(session, [incident])
    engine.dispose()
    (row,) = alerts(store_url)
    assert row.pupil == "10.0.0.1"


PLACES = """
    rules:
      - name: off-site-only
        min_severity: 4
        place: off_site
        to: [out.of.hours@school.example]
      - name: on-site-only
        min_severity: 4
        place: on_site
        to: [dsl@school.example]
"""


def test_rules_know_on_and_off_site(store_url: str, tmp_path: Path) -> None:
    """A school-owned device on the tunnel is off site (its incidents name the device '... (off-site)')."""
    policy = load_policy(write_policy(tmp_path / "policy", PLACES), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(user="alice", url="https://e.org/home", device="lt-001 (off-site)"))
        record(w, result(user="bob", url="https://e.org/school", device="iPhone"))
    got = {(a.pupil, a.rule) for a in alerts(store_url)}
    assert got == {("alice", "off-site-only"), ("bob", "on-site-only")}


def test_a_bad_place_is_one_located_error(tmp_path: Path) -> None:
    from netmon.errors import ConfigError

    bad = "rules:\n  - name: r\n    place: away\n    to: [a@b.example]\n"
    with pytest.raises(ConfigError) as err:
        load_policy(write_policy(tmp_path / "policy", bad), env={})
    assert "place" in str(err.value)
