"""Alert rules by place and time: off site at night, only severity 4-5, to the out-of-hours contact.

The rules engine knows both (``place: off_site`` and ``when: out_of_hours`` against school.yaml's hours, in
the school's time zone); this is the combination docs/offsite.md suggests, over the real incident writer
and a real SQLite store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from netmon.config.policy import load_policy
from tests.alerts.conftest import write_policy
from tests.alerts.helpers import record, result, writer
from tests.alerts.test_rules import alerts

RULES = """
    recipients:
      out-of-hours: [duty.dsl@school.example]
    rules:
      - name: off-site-night
        place: off_site
        when: out_of_hours
        min_severity: 4
        to: [out-of-hours]
      - name: school-day
        when: in_hours
        min_severity: 3
        to: [dsl@school.example]
"""
MONDAY_NIGHT = datetime(2026, 11, 30, 22, 30, tzinfo=UTC).timestamp()  # 22:30 in London (GMT)
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
LAPTOP = "lt-001 (off-site)"


def test_off_site_at_night_only_severity_4_and_5_reach_the_out_of_hours_contact(
    store_url: str, tmp_path: Path
) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", RULES), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(
            w,
            result(user="alice", severity=4, t=MONDAY_NIGHT, device=LAPTOP, url="https://e.org/1"),
            result(user="alice", severity=3, t=MONDAY_NIGHT, device=LAPTOP, url="https://e.org/2"),
            result(user="alice", severity=3, t=MONDAY_NOON, device=LAPTOP, url="https://e.org/3"),
            result(user="bob", severity=5, t=MONDAY_NIGHT, device="iPhone", url="https://e.org/4"),
        )
    got = sorted((a.pupil, a.rule, tuple(a.recipients)) for a in alerts(store_url))
    assert got == [
        ("alice", "off-site-night", ("duty.dsl@school.example",)),
        ("alice", "school-day", ("dsl@school.example",)),
    ]
