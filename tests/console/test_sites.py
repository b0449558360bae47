"""A trust of schools on one store (SQLite and PostgreSQL): a member of staff with a site sees only that
site's incidents on every page and every URL of an incident (403 for another site's), their auditor
reads their site's audit rows, and the trust's lead (site "") sees every site. `netmon report --site`."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.identity.users import hash_password
from netmon.incidents import queries
from netmon.incidents.dashboard import week_start
from netmon.store.console import StaffAccount
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent
from tests.console.conftest import PASSWORD, Member, add_incidents, csrf_of, make_incident, sign_in

NOW = week_start(datetime.now(UTC)) + timedelta(hours=10)
NORTH_DSL = Member("nora", "dsl", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
LEAD = Member("lena", "dsl", "MZXW6YTBOI3TQOJQMZXW6YTBOI3TQOJQ")
NORTH_AUDITOR = Member("nadia", "auditor", None)
SOUTH_DSL = Member("sam", "dsl", "ONSWG4TFORSXG5DFONSWG4TFORSXG5DF")
SITES = {"nora": "north", "lena": "", "nadia": "north", "sam": "south"}


@pytest.fixture
def trust(store_url: str) -> dict[str, str]:
    engine = make_engine(store_url)
    with Session(engine) as db, db.begin():
        password_hash = hash_password(PASSWORD)
        for m in (NORTH_DSL, LEAD, NORTH_AUDITOR, SOUTH_DSL):
            db.add(
                StaffAccount(
                    username=m.username, display_name=m.username.title(), role=m.role, scope=[],
                    site=SITES[m.username], password_hash=password_hash, totp_secret=m.secret,
                    totp_last_step=0, disabled=False, failed_attempts=0,
                )
            )  # fmt: skip
    engine.dispose()
    # the same pupil name at both schools, and a second north incident for the timeline
    north, north_again, south = add_incidents(
        store_url,
        [
            make_incident(site="north", time=NOW, user="alice", category="suicide"),
            make_incident(
                site="north", time=NOW - timedelta(hours=2), user="alice", category="bullying", severity=3
            ),  # fmt: skip
            make_incident(
                site="south",
                time=NOW - timedelta(hours=1),
                user="alice",
                category="violence",
                excerpt="south's [[own]] words",
                year_group="Y11",
            ),  # fmt: skip
        ],
    )
    return {"north": north, "north_again": north_again, "south": south}


@pytest.fixture
def app(store_url: str, trust: dict[str, str]) -> Flask:  # overrides the conftest's: this store's staff
    from netmon_console.app import ConsoleConfig, create_app

    application = create_app(ConsoleConfig(db_url=store_url, secret_key="test-secret", totp_key=b"k" * 32))  # noqa: S106
    application.config["TESTING"] = True
    yield application  # type: ignore[misc]
    application.extensions["netmon_console"].engine.dispose()


def test_queries_keep_to_the_site(store_url: str, trust: dict[str, str]) -> None:
    engine = make_engine(store_url)
    with Session(engine) as db:
        north = queries.queue(db, queries.QueueFilter(site="north"))
        everyone = queries.queue(db, queries.QueueFilter(site=None))
        assert {r.uid for r in north.rows} == {trust["north"], trust["north_again"]}
        assert len(everyone.rows) == 3
        assert queries.status_counts(db, queries.QueueFilter(site="south"))["new"] == 1
        incident = queries.incident_by_uid(db, trust["north"])
        assert incident is not None
        assert [r.uid for r in queries.pupil_timeline(db, incident, site="north")] == [trust["north_again"]]
        assert len(queries.pupil_timeline(db, incident)) == 2  # the trust sees the name at both schools
    engine.dispose()
    assert queries.in_site("", "south") and queries.in_site("north", "north")
    assert not queries.in_site("north", "south") and not queries.in_site("north", "")


def test_a_school_dsl_sees_only_their_site_everywhere(client: FlaskClient, trust: dict[str, str]) -> None:
    assert sign_in(client, NORTH_DSL).status_code == 302
    queue = client.get("/incidents?status=all").text
    assert trust["north"] in queue and trust["south"] not in queue
    north_page = client.get(f"/incidents/{trust['north']}").text
    assert trust["north_again"] in north_page and trust["south"] not in north_page  # timeline: north only
    assert "south&#39;s [[own]] words" not in north_page
    south = trust["south"]
    page = client.get(f"/incidents/{trust['north']}").text
    token = csrf_of(page)
    refused = [
        client.get(f"/incidents/{south}").status_code,
        client.get(f"/incidents/{south}/capture").status_code,
        client.post(
            f"/incidents/{south}/review", data={"csrf": token, "status": "closed", "outcome": "no_concern"}
        ).status_code,  # fmt: skip
        client.post(f"/incidents/{south}/acknowledge", data={"csrf": token}).status_code,
        client.post(f"/incidents/{south}/suggest", data={"csrf": token, "kind": "removal"}).status_code,
    ]
    assert refused == [403] * 5
    export = client.get("/export.csv?status=all").get_data(as_text=True).lstrip("\ufeff")
    assert sorted(row["uid"] for row in csv.DictReader(io.StringIO(export))) == sorted(
        [trust["north"], trust["north_again"]]
    )
    assert 'id="total">2<' in client.get("/dashboard").text


def test_the_trust_lead_sees_every_site(client: FlaskClient, trust: dict[str, str]) -> None:
    sign_in(client, LEAD)
    queue = client.get("/incidents?status=all").text
    assert all(uid in queue for uid in trust.values())
    assert client.get(f"/incidents/{trust['south']}").status_code == 200
    assert client.get(f"/incidents/{trust['south']}/capture").status_code == 200
    assert 'id="total">3<' in client.get("/dashboard").text


def test_audit_rows_carry_the_site_and_a_site_auditor_reads_theirs(
    app: Flask, store_url: str, trust: dict[str, str]
) -> None:
    north, lead, south, auditor = (app.test_client() for _ in range(4))
    sign_in(north, NORTH_DSL)
    north.get(f"/incidents/{trust['north']}")
    north.get(f"/incidents/{trust['south']}")  # refused, and audited
    sign_in(lead, LEAD)
    lead.get(f"/incidents/{trust['north']}")  # the trust's lead looking at a north pupil
    lead.get(f"/incidents/{trust['south']}")
    sign_in(south, SOUTH_DSL)
    south.get(f"/incidents/{trust['south']}")
    engine = make_engine(store_url)
    with Session(engine) as db:
        stmt = select(AuditEvent).where(AuditEvent.action == "console.incident.view").order_by(AuditEvent.id)
        views = [(e.actor, e.subject, e.site) for e in db.scalars(stmt)]
        refused = db.scalars(select(AuditEvent).where(AuditEvent.action == "console.incident.refused")).all()
    engine.dispose()
    assert views == [
        ("nora", trust["north"], "north"), ("lena", trust["north"], "north"),
        ("lena", trust["south"], "south"), ("sam", trust["south"], "south"),
    ]  # fmt: skip
    assert [(e.actor, e.subject, e.site) for e in refused] == [("nora", trust["south"], "north")]
    sign_in(auditor, NORTH_AUDITOR)
    log = auditor.get("/audit").text
    assert "lena" in log and "nora" in log and trust["north"] in log
    assert trust["south"] in log  # nora's refused attempt at south's incident is north's business
    assert "sam" not in log  # south's DSL and what they saw are not


def _report(store_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["report", "--db", store_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_report_per_site_and_for_the_trust(store_url: str, trust: dict[str, str]) -> None:
    until = (NOW + timedelta(hours=1)).isoformat()
    north = _report(store_url, "--site", "north", "--until", until)
    everyone = _report(store_url, "--until", until)
    assert "report for site north" in north and "site north" in north.split("Dashboard")[1]
    assert re.search(r"incidents 2: new 2", north) and re.search(r"incidents 3: new 3", everyone)
    assert "violence" not in north and "violence" in everyone
    assert "the whole trust" in everyone


def test_flags_count_the_viewers_site_only(store_url: str) -> None:
    """Three self-harm incidents in a week, one of them at another school: a repetition for the trust's
    lead, not for the school's DSL (who must not learn of the other school's incident from a flag)."""
    uids = add_incidents(
        store_url,
        [
            make_incident(site="north", time=NOW - timedelta(days=2), category="self-harm"),
            make_incident(site="south", time=NOW - timedelta(days=1), category="self-harm"),
            make_incident(site="north", time=NOW, category="self-harm"),
        ],
    )
    engine = make_engine(store_url)
    with Session(engine) as db:
        latest = queries.incident_by_uid(db, uids[2])
        assert latest is not None
        trust_flags = [f.kind for f in queries.pupil_flags(db, latest)]
        school_flags = [f.kind for f in queries.pupil_flags(db, latest, site="north")]
    engine.dispose()
    assert "repetition" in trust_flags and "repetition" not in school_flags


def test_library_suggestions_keep_to_the_site(
    client: FlaskClient, store_url: str, trust: dict[str, str]
) -> None:
    """A school's DSL reviews only the suggestions made from their own site's incidents."""
    from netmon.store.suggestions import LibrarySuggestion

    engine = make_engine(store_url)
    with Session(engine) as db, db.begin():
        for site in ("north", "south"):
            db.add(
                LibrarySuggestion(
                    created_by="someone", incident_uid=trust[site], kind="removal", category="violence",
                    language="en", phrase=f"{site}-only phrase", severity=2, library_file="x.txt", line=1,
                    host=f"{site}.example", reason="false alarm",
                )
            )  # fmt: skip
    with Session(engine) as db:
        south_id = db.scalar(select(LibrarySuggestion.id).where(LibrarySuggestion.incident_uid == trust["south"]))
    engine.dispose()
    assert sign_in(client, NORTH_DSL).status_code == 302
    page = client.get("/library").text
    assert "north-only phrase" in page and "south-only phrase" not in page
    refused = client.post(
        f"/library/suggestions/{south_id}",
        data={"csrf": csrf_of(page), "decision": "reject", "reason": "not ours"},
    )
    assert refused.status_code == 403
