"""Exports and listings per site and for the whole trust: `netmon export --site`, `netmon incidents
--site`, `netmon sessions --site`, against a real store holding two schools' incidents."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.identity.sessions import start_session
from netmon.identity.users import Account
from netmon.incidents.writer import IncidentWriter
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent
from tests.trust.test_sites import result


def _two_schools(url: str, tmp_path: Path) -> None:
    w = IncidentWriter(url, spill_dir=tmp_path / "state", flush_interval=0.05)
    for n in range(3):
        w.submit(result(n, site="school-a"))
    for n in range(3, 5):
        w.submit(result(n, site="school-b"))
    w.close()


def run(*args: str) -> str:
    got = CliRunner().invoke(main, list(args))
    assert got.exit_code == 0, got.output
    return got.output


def test_export_per_site_and_for_the_trust(store_url: str, tmp_path: Path) -> None:
    _two_schools(store_url, tmp_path)
    school_a = [
        json.loads(line) for line in run("export", "--db", store_url, "--site", "school-a").splitlines()
    ]
    trust = [json.loads(line) for line in run("export", "--db", store_url).splitlines()]
    assert sorted(r["url"] for r in school_a) == [f"https://chat.example/{n}" for n in range(3)]
    assert {r["site"] for r in school_a} == {"school-a"}
    assert sorted((r["site"], r["url"]) for r in trust) == sorted(
        [("school-a", f"https://chat.example/{n}") for n in range(3)]
        + [("school-b", f"https://chat.example/{n}") for n in range(3, 5)]
    )
    assert run("export", "--db", store_url, "--site", "school-z") == ""
    engine = make_engine(store_url)
    with Session(engine) as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        audits = [(e.site, e.detail["filters"]["site"]) for e in session.scalars(stmt)]
    engine.dispose()
    assert audits == [("school-a", "school-a"), ("", None), ("school-z", "school-z")]


def test_incidents_listing_per_site_and_for_the_trust(store_url: str, tmp_path: Path) -> None:
    _two_schools(store_url, tmp_path)
    school_b = run("incidents", "--db", store_url, "--site", "school-b")
    assert "SITE" not in school_b.splitlines()[0] and "(2 latest" in school_b
    trust = run("incidents", "--db", store_url).splitlines()
    assert trust[0].split()[-1] == "SITE"
    assert sorted(line.split()[-1] for line in trust[1:-1]) == ["school-a"] * 3 + ["school-b"] * 2
    assert "no incidents recorded at site 'school-z'" in run(
        "incidents", "--db", store_url, "--site", "school-z"
    )
    engine = make_engine(store_url)
    with Session(engine) as session:
        sites = list(session.scalars(select(AuditEvent.site).order_by(AuditEvent.id)))
    engine.dispose()
    assert sites == ["school-b", "", "school-z"]  # what each listing read


def test_show_with_a_site_refuses_another_site_incident(store_url: str, tmp_path: Path) -> None:
    _two_schools(store_url, tmp_path)
    exported = run("export", "--db", store_url, "--site", "school-b").splitlines()
    uid = json.loads(exported[0])["uid"]
    assert "school-b" in run("incidents", "--db", store_url, "--show", uid, "--site", "school-b")
    refused = CliRunner().invoke(main, ["incidents", "--db", store_url, "--show", uid, "--site", "school-a"])
    assert refused.exit_code == 1 and "no incident with uid" in refused.output


def test_sessions_listing_is_per_site(store_url: str) -> None:
    for site, name in (("school-a", "amy"), ("school-b", "ben")):
        engine = make_engine(store_url, site=site)
        with Session(engine) as session, session.begin():
            account = Account(name, name.title(), "pupil", "9", (), "local")
            start_session(
                session, account, ip="10.0.0.5", mac=None, user_agent="x", aup_version="1", language="en"
            )
        engine.dispose()
    listed = run("sessions", "--db", store_url, "--site", "school-b")
    assert "ben" in listed and "amy" not in listed
    assert "ended 1 session(s)" in run("sessions", "--db", store_url, "--site", "school-a", "end", "10.0.0.5")
    assert "ben" in run("sessions", "--db", store_url, "--site", "school-b")
