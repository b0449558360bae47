"""The dashboard page: incidents per week by category and year group, open versus closed and time to first
review, drawn without scripts or external assets, scoped for a pastoral lead, audited; and `netmon
report`, which prints the same figures from the same core module."""

from __future__ import annotations

import html
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.incidents.dashboard import figures, render_text, week_start
from netmon.incidents.outcomes import ReviewChange, change_review
from netmon.incidents.queries import in_scope, incident_by_uid
from netmon.store.console import IncidentReview
from netmon.store.db import make_engine
from netmon.store.incidents import Incident
from tests.console.conftest import STAFF, add_incidents, make_incident, sign_in
from tests.console.test_auth import audit_rows

NOW = datetime.now(UTC)


def _setup(url: str) -> list[str]:
    this_week = week_start(NOW) + timedelta(hours=1)
    last_week = this_week - timedelta(weeks=1)
    uids = add_incidents(
        url,
        [
            make_incident(time=this_week, category="suicide", year_group="Y9"),
            make_incident(time=this_week, category="bullying", year_group="Y9"),
            make_incident(time=last_week, category="suicide", year_group="Y11", groups=["11C"]),
            make_incident(time=this_week - timedelta(weeks=20), category="suicide"),  # outside 8 weeks
        ],
    )
    engine = make_engine(url)
    with Session(engine) as db, db.begin():
        for uid, status in ((uids[0], "closed"), (uids[2], "in_review")):
            incident = incident_by_uid(db, uid)
            assert incident is not None
            change_review(db, incident, "dina", ReviewChange(status=status, outcome="no_concern"))
    engine.dispose()
    return uids


def test_figures_per_week_category_year_status(console_db: str) -> None:
    _setup(console_db)
    engine = make_engine(console_db)
    with Session(engine) as db:
        f = figures(db, None, 8, NOW)
        scoped = figures(db, ("Y11",), 8, NOW)
    engine.dispose()
    assert f.total == 3 and len(f.weeks) == 8
    assert f.by_category == {"suicide": [0] * 6 + [1, 1], "bullying": [0] * 7 + [1]}
    assert f.by_year == {"Y11": [0] * 6 + [1, 0], "Y9": [0] * 7 + [2]}
    assert f.status == {"new": 1, "in_review": 1, "closed": 1}
    assert len(f.review_hours) == 2 and f.median_review_hours is not None
    assert scoped.total == 1 and scoped.by_year == {"Y11": [0] * 6 + [1, 0]}


def test_dashboard_page_is_inert_scoped_and_audited(client: FlaskClient, console_db: str) -> None:
    _setup(console_db)
    sign_in(client, STAFF["dsl"])
    r = client.get("/dashboard")
    assert r.status_code == 200
    page = r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script[^>]*>", page)  # drawn without scripts: only the idle sign-out warning
    assert len(scripts) == 1 and 'src="/static/idle.js"' in scripts[0]
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert 'id="total">3<' in page and 'id="count-closed">1<' in page and "<svg" in page
    assert "Incidents per week by category" in page and "bullying" in page
    assert audit_rows(console_db, "console.dashboard.view")
    other = client.application.test_client()
    sign_in(other, STAFF["pastoral"])  # scope Y9
    assert 'id="total">2<' in other.get("/dashboard").text
    auditor = client.application.test_client()
    sign_in(auditor, STAFF["auditor"])
    assert auditor.get("/dashboard").status_code == 403


def _page_figures(page: str) -> dict[str, object]:
    """What the dashboard page shows: the status figures and each table row's counts (weeks, then total)."""
    shown: dict[str, object] = {
        key: re.search(rf'id="{key}">([^<]*)<', page).group(1)  # type: ignore[union-attr]
        for key in ("total", "count-new", "count-in_review", "count-closed", "review-median")
    }
    for row in re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', page, re.S):
        shown[html.unescape(row[0])] = [int(n) for n in re.sub(r"<[^>]+>", " ", row[1]).split()]
    return shown


def _cli_figures(text: str) -> dict[str, object]:
    part = text.split("Dashboard, last", 1)[1]
    head = re.search(r"incidents (\d+): new (\d+), in review (\d+), closed (\d+)", part)
    median = re.search(r"first review \(median\): ([\d.]+) hours over (\d+) reviewed", part)
    assert head and median, part
    shown: dict[str, object] = dict(
        zip(("total", "count-new", "count-in_review", "count-closed"), head.groups(), strict=True)
    )
    shown["review-median"] = f"{median.group(1)} hours over {median.group(2)} reviewed"
    for line in part.splitlines():
        cells = line.split()
        if line.startswith("    ") and len(cells) == 10 and all(c.isdigit() for c in cells[1:]):
            shown[cells[0]] = [int(c) for c in cells[1:]]
    return shown


def test_netmon_report_prints_the_dashboard_figures(client: FlaskClient, console_db: str) -> None:
    _setup(console_db)
    sign_in(client, STAFF["dsl"])
    page = _page_figures(client.get("/dashboard?weeks=8").text)
    result = CliRunner().invoke(main, ["report", "--db", console_db, "--weeks", "8"])
    assert result.exit_code == 0, result.output
    printed = _cli_figures(result.output)
    assert page == printed
    assert printed["total"] == "3" and printed["suicide"] == [0] * 6 + [1, 1, 2]
    assert printed["Y9"] == [0] * 7 + [2, 2] and printed["count-closed"] == "1"


def test_render_text_names_the_site_and_empty_tables(console_db: str) -> None:
    engine = make_engine(console_db)
    with Session(engine) as db:
        text = render_text(figures(db, None, 4, NOW, site="north"))
    engine.dispose()
    assert "last 4 weeks" in text and "site north" in text and "incidents 0: new 0" in text
    assert "none reviewed yet" in text and text.count("(no incidents)") == 2


def _python_figures(url: str, scope: tuple[str, ...] | None, weeks: int, now: datetime, site: str | None):
    """The figures counted the plain way: every incident read, bucketed and counted in Python."""
    engine = make_engine(url)
    with Session(engine) as db:
        rows = db.execute(
            select(Incident.time, Incident.category, Incident.year_group, Incident.groups, Incident.site,
                   IncidentReview.status, IncidentReview.first_reviewed_at)
            .outerjoin(IncidentReview, IncidentReview.incident_id == Incident.id)
        ).all()  # fmt: skip
    engine.dispose()
    starts = [week_start(now) - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    categories: dict[str, list[int]] = {}
    years: dict[str, list[int]] = {}
    status = {"new": 0, "in_review": 0, "closed": 0}
    hours = []
    for t, category, year, groups, at, st, reviewed in rows:
        if week_start(t) not in starts or not in_scope(scope, year, groups) or (site and at != site):
            continue
        n = starts.index(week_start(t))
        categories.setdefault(category, [0] * weeks)[n] += 1
        years.setdefault(year or "unknown", [0] * weeks)[n] += 1
        status[st or "new"] += 1
        if reviewed is not None:
            hours.append(max(0.0, (reviewed - t).total_seconds() / 3600))
    return categories, years, status, sorted(hours)


def test_aggregated_figures_equal_a_plain_python_count(console_db: str) -> None:
    """On a seeded store (week edges to the microsecond, future incidents, no year group, groups with
    quotes, backslashes and LIKE wildcards, ten categories, reviews, two sites) the SQL figures equal
    the count of every row in Python, for the whole trust, scopes and a site."""
    rng = random.Random(4)
    now = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    monday = week_start(now)
    edges = [monday - timedelta(weeks=w) + d for w in range(-1, 11)
             for d in (timedelta(0), -timedelta(microseconds=1), timedelta(days=3, hours=7))]  # fmt: skip
    odd_groups = ["9A", "19A", '9"A', "9\\A", "10_B", "10%B", "drama", "Émile"]
    incidents = []
    for n in range(400):
        t = rng.choice(edges) if n % 3 == 0 else monday - timedelta(seconds=rng.randint(-86_400, 75 * 86_400))
        incidents.append(
            make_incident(
                time=t, category=f"cat{rng.randint(0, 9)}", year_group=rng.choice(["Y7", "Y9", "Y11", None]),
                groups=rng.sample(odd_groups, rng.randint(0, 3)), site=rng.choice(["", "north"]),
            )
        )  # fmt: skip
    uids = add_incidents(console_db, incidents)
    engine = make_engine(console_db)
    with Session(engine) as db, db.begin():
        for uid in rng.sample(uids, 120):
            incident = incident_by_uid(db, uid)
            assert incident is not None
            status = rng.choice(["in_review", "closed"])
            change_review(db, incident, "dina", ReviewChange(status=status, outcome="no_concern"))
    cases = [(None, 8, None), (None, 1, None), (None, 12, "north"), (("Y9",), 8, None),
             (("9A", '9"A', "10_B"), 10, None), (("9\\A", "Y7"), 6, "north"), ((), 8, None)]  # fmt: skip
    with Session(engine) as db:
        for scope, weeks, site in cases:
            got = figures(db, scope, weeks, now, site=site)
            categories, years, status, hours = _python_figures(console_db, scope, weeks, now, site)
            ranked = sorted(categories.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
            top = dict(ranked[:8])
            if len(ranked) > 8:
                top["other"] = [sum(v[n] for _, v in ranked[8:]) for n in range(weeks)]
            assert got.by_category == top, (scope, weeks, site)
            assert got.by_year == dict(sorted(years.items())), (scope, weeks, site)
            assert got.status == status and got.total == sum(status.values())
            assert sorted(got.review_hours) == pytest.approx(hours)
    engine.dispose()
    assert figures_total_ok(console_db, now)


def figures_total_ok(url: str, now: datetime) -> bool:
    """Sanity: the seed put incidents on both sides of the 8-week window (so the edges were tested)."""
    engine = make_engine(url)
    with Session(engine) as db:
        inside = figures(db, None, 8, now).total
        everything = db.scalar(select(func.count(Incident.id))) or 0
    engine.dispose()
    return 0 < inside < everything
