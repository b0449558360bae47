"""The dashboard page: incidents per week by category and year group, open versus closed and time to first
review, drawn without scripts or external assets, scoped for a pastoral lead, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from netmon_console.dashboard import figures, week_start
from sqlalchemy.orm import Session

from netmon.incidents.outcomes import ReviewChange, change_review
from netmon.incidents.queries import incident_by_uid
from netmon.store.db import make_engine
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
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert 'id="total">3<' in page and 'id="count-closed">1<' in page and "<svg" in page
    assert "Incidents per week by category" in page and "bullying" in page
    assert audit_rows(console_db, "console.dashboard.view")
    other = client.application.test_client()
    sign_in(other, STAFF["pastoral"])  # scope Y9
    assert 'id="total">2<' in other.get("/dashboard").text
    auditor = client.application.test_client()
    sign_in(auditor, STAFF["auditor"])
    assert auditor.get("/dashboard").status_code == 403
