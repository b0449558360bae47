"""Reports over seeded incidents in a real store: the figures, the HTML, the CSV, and e-mail delivery."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from netmon.incidents.reports import build_report, render_html, to_csv
from netmon.store.db import make_engine

from .conftest import SmtpServer, add_incident

UNTIL = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def seed(url: str) -> None:
    day = timedelta(days=1)
    # before both periods: "alice" was seen before (a repeat pupil this week)
    add_incident(url, user="alice", time=UNTIL - 20 * day, category="bullying", severity=2, phrase="loser")
    # previous week: 3 incidents
    for i in range(3):
        add_incident(
            url,
            user="alice",
            time=UNTIL - 10 * day + i * timedelta(hours=1),
            category="bullying",
            severity=2,
            phrase="loser",
        )
    # this week: 7 incidents
    add_incident(url, user="alice", time=UNTIL - 2 * day, category="bullying", severity=2, phrase="loser")
    add_incident(
        url, user="alice", time=UNTIL - 2 * day, category="bullying", severity=3, phrase="nobody likes you"
    )
    add_incident(url, user="bob", time=UNTIL - 1 * day, category="suicide", severity=5, phrase="kms")
    add_incident(url, user="bob", time=UNTIL - 1 * day, category="self_harm", severity=4, phrase="cut myself")
    add_incident(
        url,
        user=None,
        client_ip="10.0.0.9",
        time=UNTIL - timedelta(hours=3),
        category="gambling",
        severity=1,
        phrase="bet",
    )
    add_incident(
        url, user="carol", time=UNTIL - timedelta(hours=2), category="bullying", severity=2, phrase="loser"
    )
    add_incident(
        url,
        user="carol",
        time=UNTIL - timedelta(minutes=5),
        category="drugs",
        severity=3,
        phrase="<script>alert(1)</script>",
    )
    # after the period: not counted
    add_incident(
        url, user="dave", time=UNTIL + timedelta(hours=1), category="suicide", severity=5, phrase="kms"
    )


def test_weekly_figures(store_url: str) -> None:
    seed(store_url)
    engine = make_engine(store_url)
    report = build_report(engine, "weekly", until=UNTIL)
    engine.dispose()
    assert report.total == 7 and report.previous_total == 3
    assert report.trend == "up 133%"
    assert {r.name: r.count for r in report.by_severity} == {"5": 1, "4": 1, "3": 2, "2": 2, "1": 1}
    assert {r.name: (r.count, r.previous) for r in report.by_category} == {
        "bullying": (3, 3),
        "suicide": (1, 0),
        "self_harm": (1, 0),
        "gambling": (1, 0),
        "drugs": (1, 0),
    }
    assert report.by_category[0].name == "bullying"
    assert [(r.name, r.count) for r in report.top_users][:3] == [("bob", 2), ("alice", 2), ("carol", 2)]
    assert report.top_users[3].name == "10.0.0.9 (not signed in)"
    assert report.top_phrases[0].name == "loser" and report.top_phrases[0].count == 2
    assert [r.name for r in report.high_risk] == ["bob"]
    assert report.high_risk[0].extra["max_severity"] == 5
    assert set(report.new_pupils) == {"bob", "carol", "10.0.0.9 (not signed in)"}
    assert report.repeat_pupils == ("alice",)


def test_daily_and_monthly_windows(store_url: str) -> None:
    seed(store_url)
    engine = make_engine(store_url)
    daily = build_report(engine, "daily", until=UNTIL)
    monthly = build_report(engine, "monthly", until=UNTIL)
    engine.dispose()
    assert daily.total == 5  # the period starts exactly one day before: bob's two count
    assert daily.previous_total == 2
    assert monthly.total == 11


def test_html_has_bars_escapes_and_csv_is_safe(store_url: str) -> None:
    seed(store_url)
    engine = make_engine(store_url)
    report = build_report(engine, "weekly", until=UNTIL)
    engine.dispose()
    html = render_html(report)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert 'bgcolor="#2e86c1"' in html  # plain HTML/CSS bars
    assert "<img" not in html and "<svg" not in html
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0] == ["section", "name", "count", "previous", "detail"]
    assert ["total", "incidents", "7", "3", "up 133%"] in rows
    assert ["category", "bullying", "3", "3", ""] in rows
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netmon", "report", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_report_command_writes_html(store_url: str, tmp_path: Path) -> None:
    seed(store_url)
    out = tmp_path / "weekly.html"
    done = run_cli("--period", "weekly", "--db", store_url, "--until", UNTIL.isoformat(), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Incidents: 7 (previous period: 3, up 133%)" in done.stdout
    html = out.read_text()
    assert "bob" in html and "kms" in html and "High-risk pupils" in html


def test_report_send_mails_html_with_csv(store_url: str, smtp_server: SmtpServer, tmp_path: Path) -> None:
    seed(store_url)
    done = run_cli(
        "--period",
        "weekly",
        "--db",
        store_url,
        "--until",
        UNTIL.isoformat(),
        "--send",
        env={**smtp_server.env(), "NETMON_ALERT_TO": "dsl@school.example"},
    )
    assert done.returncode == 0, done.stderr
    (mail,) = smtp_server.received
    assert mail.rcpt_tos == ["dsl@school.example"]
    assert "Weekly" in str(mail.message["Subject"])
    attachments = list(mail.message.iter_attachments())
    assert len(attachments) == 1 and attachments[0].get_content_type() == "text/csv"
    assert "total,incidents,7,3" in attachments[0].get_content()
    assert "High-risk pupils" in mail.part("html")


def test_report_send_fails_cleanly_when_smtp_is_down(store_url: str, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    done = run_cli(
        "--period", "daily", "--db", store_url, "--send", "--to", "dsl@school.example", env=smtp_server.env()
    )
    assert done.returncode == 1
    assert "report not sent" in done.stderr


@pytest.mark.parametrize("period", ["fortnightly"])
def test_report_rejects_unknown_period(period: str, store_url: str) -> None:
    done = run_cli("--period", period, "--db", store_url)
    assert done.returncode == 2 and "daily" in done.stderr


def test_high_risk_list_from_the_policy(store_url: str, tmp_path: Path) -> None:
    from .conftest import write_policy

    seed(store_url)
    school = "groups:\n  high-risk: {users: [Carol]}\n"
    root = write_policy(tmp_path / "policy", "rules: []\n", school)
    out = tmp_path / "r.html"
    done = run_cli(
        "--period",
        "weekly",
        "--db",
        store_url,
        "--until",
        UNTIL.isoformat(),
        "--policy",
        str(root),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "carol" in done.stdout.split("High-risk pupils:")[1].split("Top pupils:")[0]
    assert "on the high-risk list" in out.read_text()
