"""The library learns from the DSL: a false alarm offers an overlay change, a network admin approves or
rejects it with a reason, an approval lands in the overlay (checked by loading it first) and the same
text stops firing; reported misses become a local evaluation set for ``netmon library eval``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from netmon_console.app import ConsoleConfig, create_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.cli import main
from netmon.incidents import decisions
from netmon.incidents.suggestions import HEADER, MISSES_FILE
from netmon.scan import libeval
from netmon.scan.findings import FlowContext, ScanResult, TextFinding
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher
from netmon.store.db import make_engine
from netmon.store.incidents import Incident
from netmon.store.suggestions import LibrarySuggestion, ReportedMiss
from tests.console.conftest import STAFF, csrf_of, sign_in
from tests.console.test_auth import audit_rows
from tests.netmon.test_library_scope import fired

TEXT = "Match report: in the second half we will shoot the winning goal, said the captain."
CATEGORIES = "violence | Violence | Threats and violence\nweapons | Weapons | Weapons\n"
VIOLENCE = "@category violence\n@language en\nshoot | 4 | unless: photo shoot\nhurt you | 3\n"


def make_library(base: Path) -> tuple[Path, Path]:
    """A small library (root) and an empty school overlay directory."""
    root, overlay = base / "library", base / "overlay"
    (root / "en").mkdir(parents=True)
    (root / "categories.txt").write_text(CATEGORIES, encoding="utf-8")
    (root / "en" / "violence.txt").write_text(VIOLENCE, encoding="utf-8")
    overlay.mkdir()
    return root, overlay


def fires(root: Path, overlay: Path | None, text: str, phrase: str = "shoot") -> bool:
    hits = Matcher.compile(load_library(root, overlay)).scan(text)
    return any(h.phrase == phrase for h in hits)


def incident_from_scan(root: Path, text: str = TEXT, host: str = "sport.example") -> Incident:
    """An incident as the recorder builds it from a real scan of ``text``."""
    hits = Matcher.compile(load_library(root)).scan(text)
    assert hits, "the test text must fire"
    ctx = FlowContext(
        time=datetime(2026, 11, 30, 9, tzinfo=UTC).timestamp(), client_ip="10.0.0.5", host=host,
        url=f"http://{host}/report", user="alice", role="pupil", year_group="Y9", groups=("9A",),
    )  # fmt: skip
    draft = decisions.build(ScanResult(ctx, (TextFinding("page", text, hits),)))
    assert draft is not None
    return Incident(**draft.row())


def add(url: str, incident: Incident) -> str:
    engine = make_engine(url)
    with Session(engine) as db, db.begin():
        db.add(incident)
        uid = incident.uid
    engine.dispose()
    return uid


def rows(url: str, model: type) -> list:  # type: ignore[type-arg]
    engine = make_engine(url)
    with Session(engine) as db:
        out = list(db.scalars(select(model).order_by(model.id)))
    engine.dispose()
    return out


@pytest.fixture
def lib(tmp_path: Path) -> tuple[Path, Path]:
    return make_library(tmp_path)


@pytest.fixture
def app(console_db: str, lib: tuple[Path, Path]) -> Iterator[Flask]:
    root, overlay = lib
    config = ConsoleConfig(db_url=console_db, secret_key="test-secret", library_root=root, overlay=overlay)  # noqa: S106
    application = create_app(config)
    application.config["TESTING"] = True
    yield application
    application.extensions["netmon_console"].engine.dispose()


def false_alarm(client: FlaskClient, uid: str) -> str:
    """Record the outcome false alarm (closing the incident); returns the incident page after it."""
    page = client.get(f"/incidents/{uid}").text
    data = {"csrf": csrf_of(page), "status": "closed", "outcome": "false_alarm", "note": "football"}
    assert client.post(f"/incidents/{uid}/review", data=data).status_code == 302
    return client.get(f"/incidents/{uid}").text


def suggest(client: FlaskClient, uid: str, page: str, **form: str) -> str:
    """Send a suggestion from the incident page; returns the page it leads back to."""
    data = {"csrf": csrf_of(page), "phrase": "shoot", "category": "violence", "kind": "exception"}
    data.update(form)
    r = client.post(f"/incidents/{uid}/suggest", data=data)
    assert r.status_code == 302
    return client.get(r.headers["Location"]).text


def admin(app: Flask) -> FlaskClient:
    other = app.test_client()
    sign_in(other, STAFF["netadmin"])
    return other


def decide(client: FlaskClient, sid: int, decision: str, reason: str) -> str:
    page = client.get("/library").text
    r = client.post(
        f"/library/suggestions/{sid}", data={"csrf": csrf_of(page), "decision": decision, "reason": reason}
    )
    assert r.status_code == 302
    return client.get(r.headers["Location"]).text


def test_false_alarm_to_approved_exception_stops_firing(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    uid = add(console_db, incident_from_scan(root))
    assert fires(root, overlay, TEXT)
    sign_in(client, STAFF["dsl"])
    before = client.get(f"/incidents/{uid}").text
    assert 'id="suggest"' not in before  # offered only once the outcome is false alarm
    page = false_alarm(client, uid)
    assert 'id="suggest"' in page
    assert 'value="will shoot the winning"' in page  # the match with a word before and two after
    suggest(client, uid, page, exception="will shoot the winning", reason="football report")
    (s,) = rows(console_db, LibrarySuggestion)
    assert (s.status, s.kind, s.phrase, s.exception, s.host) == (
        "pending", "exception", "shoot", "will shoot the winning", "sport.example",
    )  # fmt: skip
    assert "pending" in client.get(f"/incidents/{uid}").text

    nick = admin(app)
    listing = nick.get("/library").text
    assert "will shoot the winning" in listing and "sport.example" in listing
    assert "alice" not in listing and "captain" not in listing  # no pupil, no captured content
    assert "Give a reason" in decide(nick, s.id, "approve", "")
    assert not (overlay / "en" / "console-violence.txt").exists()
    done = decide(nick, s.id, "approve", "a sports word")
    assert "approved" in done
    written = overlay / "en" / "console-violence.txt"
    text = written.read_text(encoding="utf-8")
    assert text.startswith(HEADER) and "@category violence\n@language en\n" in text
    assert "shoot | 4 | unless: photo shoot, will shoot the winning" in text
    assert f"incident {uid[:8]} on sport.example" in text and "approved by nick" in text
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    (s,) = rows(console_db, LibrarySuggestion)
    assert (s.status, s.decided_by, s.decision_reason, s.overlay_file) == (
        "approved", "nick", "a sports word", str(written),
    )  # fmt: skip

    assert not fires(root, overlay, TEXT)  # the same text no longer fires
    assert fires(root, overlay, "i will shoot you tomorrow")  # the phrase still does elsewhere
    assert [e.subject for e in audit_rows(console_db, "console.suggestion.create")] == [uid]
    approve = audit_rows(console_db, "console.suggestion.approve")
    assert [(e.actor, e.detail["overlay_file"]) for e in approve] == [("nick", str(written))]


def test_second_exception_and_removal_rewrite_the_console_file(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    first = add(console_db, incident_from_scan(root))
    second = add(console_db, incident_from_scan(root, "Tonight we shoot the breeze on the porch."))
    sign_in(client, STAFF["dsl"])
    suggest(client, first, false_alarm(client, first), exception="will shoot the winning")
    suggest(client, second, false_alarm(client, second), exception="we shoot the breeze")
    nick = admin(app)
    a, b = rows(console_db, LibrarySuggestion)
    decide(nick, a.id, "approve", "sport")
    decide(nick, b.id, "approve", "idiom")
    text = (overlay / "en" / "console-violence.txt").read_text(encoding="utf-8")
    assert text.count("shoot | 4") == 1
    assert "unless: photo shoot, will shoot the winning, we shoot the breeze" in text
    assert not fires(root, overlay, TEXT) and not fires(root, overlay, "we shoot the breeze")

    third = add(console_db, incident_from_scan(root, "They shoot at the goal"))
    suggest(client, third, false_alarm(client, third), kind="removal", reason="never a concern here")
    (c,) = [s for s in rows(console_db, LibrarySuggestion) if s.status == "pending"]
    decide(nick, c.id, "approve", "too noisy for us")
    text = (overlay / "en" / "console-violence.txt").read_text(encoding="utf-8")
    assert "-shoot" in text and "shoot | 4" not in text
    assert not fires(root, overlay, "i will shoot you tomorrow")
    assert fires(root, overlay, "i will hurt you", "hurt you")


def test_reject_writes_nothing(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    suggest(client, uid, false_alarm(client, uid), exception="will shoot the winning")
    (s,) = rows(console_db, LibrarySuggestion)
    done = decide(admin(app), s.id, "reject", "could be a threat")
    assert "rejected" in done and not list(overlay.rglob("*.txt"))
    (s,) = rows(console_db, LibrarySuggestion)
    assert (s.status, s.decision_reason) == ("rejected", "could be a threat")
    assert fires(root, overlay, TEXT)
    assert len(audit_rows(console_db, "console.suggestion.reject")) == 1


def test_approval_refused_when_the_overlay_would_not_load(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    suggest(client, uid, false_alarm(client, uid), exception="will shoot the winning")
    (s,) = rows(console_db, LibrarySuggestion)
    (overlay / "en").mkdir()
    school = overlay / "en" / "local.txt"
    school.write_text("@category violence\n@language en\nshoot | 9\n", encoding="utf-8")  # broken already
    page = decide(admin(app), s.id, "approve", "sport")
    assert 'id="error"' in page and "severity must be 1-5" in page and "local.txt:3" in page
    assert not (overlay / "en" / "console-violence.txt").exists()
    assert rows(console_db, LibrarySuggestion)[0].status == "pending"
    # a school file that overrides the same phrase would win over the console's: refused, not ignored
    school.write_text("@category violence\n@language en\nshoot | 4\n", encoding="utf-8")
    page = decide(admin(app), s.id, "approve", "sport")
    assert "also defined in the school&#39;s overlay:en/local.txt:3" in page
    assert not (overlay / "en" / "console-violence.txt").exists()
    assert len(audit_rows(console_db, "console.suggestion.refused")) == 2


def test_no_overlay_configured_is_refused(console_db: str, lib: tuple[Path, Path]) -> None:
    root, _overlay = lib
    config = ConsoleConfig(db_url=console_db, secret_key="s", library_root=root, overlay=None)  # noqa: S106
    application = create_app(config)
    client = application.test_client()
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    suggest(client, uid, false_alarm(client, uid), exception="will shoot the winning")
    (s,) = rows(console_db, LibrarySuggestion)
    page = decide(client, s.id, "approve", "sport")  # the DSL may decide too
    assert "no overlay directory" in page and rows(console_db, LibrarySuggestion)[0].status == "pending"
    application.extensions["netmon_console"].engine.dispose()


def test_suggestion_needs_false_alarm_and_an_exception_holding_the_phrase(
    client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, _overlay = lib
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    page = client.get(f"/incidents/{uid}").text
    assert "Record the outcome false alarm first" in suggest(
        client, uid, page, exception="will shoot the winning"
    )
    assert rows(console_db, LibrarySuggestion) == []
    page = false_alarm(client, uid)
    assert "does not contain the phrase" in suggest(client, uid, page, exception="the winning goal")
    back = suggest(client, uid, page, phrase="hurt you", exception="hurt you")
    assert "did not fire on this incident" in back
    assert rows(console_db, LibrarySuggestion) == []


def test_roles_and_csrf(app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]) -> None:
    root, _overlay = lib
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    suggest(client, uid, false_alarm(client, uid), exception="will shoot the winning")
    (s,) = rows(console_db, LibrarySuggestion)
    for who in ("auditor",):
        other = app.test_client()
        sign_in(other, STAFF[who])
        assert other.get("/library").status_code == 403
    nick = admin(app)
    page = nick.get("/library").text
    assert (
        nick.post(f"/library/suggestions/{s.id}", data={"decision": "approve", "reason": "x"}).status_code
        == 400
    )
    assert nick.post(f"/incidents/{uid}/suggest", data={"csrf": csrf_of(page)}).status_code == 403
    assert nick.post("/misses", data={"csrf": csrf_of(page), "text": "x"}).status_code == 403
    assert 'id="suggest"' not in nick.get(f"/incidents/{uid}").text  # no content for the network admin
    assert rows(console_db, LibrarySuggestion)[0].status == "pending"


def test_deputy_cannot_decide(console_db: str, app: Flask, lib: tuple[Path, Path]) -> None:
    deputy = app.test_client()
    sign_in(deputy, STAFF["deputy"])
    assert deputy.get("/library").status_code == 403
    page = deputy.get("/incidents").text
    assert (
        deputy.post("/library/suggestions/1", data={"csrf": csrf_of(page), "decision": "approve"}).status_code
        == 403
    )


def test_reported_misses_become_an_evaluation_set(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    sign_in(client, STAFF["dsl"])
    queue = client.get("/incidents").text
    assert 'id="miss"' in queue and '<option value="violence">' in queue
    data = {"csrf": csrf_of(queue), "text": "ima stab u after skl", "category": "violence", "severity": "4"}
    r = client.post("/misses", data=data)
    assert r.status_code == 302 and "Thank+you" in r.headers["Location"]
    bad = client.post("/misses", data={**data, "category": "nope"})
    assert "known+category" in bad.headers["Location"]
    (m,) = rows(console_db, ReportedMiss)
    assert (m.text, m.category, m.min_severity, m.created_by) == (
        "ima stab u after skl",
        "violence",
        4,
        "dina",
    )
    path = overlay / MISSES_FILE
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "id": f"console-miss-{m.id}", "text": "ima stab u after skl", "expect": "violence", "min_severity": 4,
    }  # fmt: skip
    load_library(root, overlay)  # the eval/ directory does not disturb the overlay
    ((_, items),) = libeval.load_corpus([path], ["violence", "weapons"])
    assert [(i.text, i.expect) for i in items] == [("ima stab u after skl", "violence")]
    result = CliRunner().invoke(
        main,
        [
            "library",
            "eval",
            str(path),
            "--library",
            str(root),
            "--overlay",
            str(overlay),
            "--as",
            "library",
            "--json",
        ],
    )  # the school's library and grammar alone: the risk model would catch this wording on its own
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert (figures["messages"], figures["recall"], figures["failures"]) == (1, 0.0, [])  # one miss, measured
    audit = audit_rows(console_db, "console.miss.report")
    assert len(audit) == 1 and "stab" not in json.dumps(audit[0].detail)
    assert "1 reported" in admin(app).get("/library").text


def scanned(root: Path, overlay: Path, url: str, text: str, source: str = "page") -> bool:
    """Whether 'shoot' fires in a real scan job of ``text`` received from (or sent to) ``url``."""
    return "shoot" in fired(Matcher.compile(load_library(root, overlay)), url, text, source=source)


def test_site_scoped_exception_quiets_that_site_only(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    page = false_alarm(client, uid)
    assert 'name="scope" value="site" checked' in page and "<code>sport.example</code>" in page
    assert "<code>sport.example/report</code>" in page  # this page, too
    back = suggest(client, uid, page, exception="will shoot the winning", scope="site", reason="sport")
    assert "only on pages of sport.example and its subdomains" in back
    (s,) = rows(console_db, LibrarySuggestion)
    assert (s.host, s.scope) == ("sport.example", "sport.example")
    nick = admin(app)
    listing = nick.get("/library").text
    assert "only on pages of sport.example and its subdomains" in listing and "alice" not in listing
    assert "approved" in decide(nick, s.id, "approve", "a sports site")
    text = (overlay / "en" / "console-violence.txt").read_text(encoding="utf-8")
    assert "shoot | on: sport.example; unless: will shoot the winning" in text
    assert f"incident {uid[:8]} on sport.example" in text
    assert "shoot | 4" not in text  # the phrase itself is untouched everywhere
    assert not scanned(root, overlay, "http://sport.example/report", TEXT)
    assert not scanned(root, overlay, "https://www.sport.example/other", TEXT)
    assert scanned(root, overlay, "http://news.example/report", TEXT)  # the same words on another site
    assert scanned(root, overlay, "http://sport.example/report", TEXT, source="form")  # a pupil typing them
    assert fires(root, overlay, TEXT)  # and the library without a host: typed text, searches

    # a second exception on the same site joins the same line
    second = add(console_db, incident_from_scan(root, "Tonight we shoot the breeze on the porch."))
    suggest(client, second, false_alarm(client, second), exception="we shoot the breeze", scope="site")
    (pending,) = [r for r in rows(console_db, LibrarySuggestion) if r.status == "pending"]
    decide(nick, pending.id, "approve", "idiom")
    text = (overlay / "en" / "console-violence.txt").read_text(encoding="utf-8")
    assert text.count("on: sport.example;") == 1
    assert "shoot | on: sport.example; unless: will shoot the winning, we shoot the breeze" in text
    assert not scanned(root, overlay, "http://sport.example/x", "we shoot the breeze")


def test_page_scoped_removal(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, overlay = lib
    uid = add(console_db, incident_from_scan(root))
    sign_in(client, STAFF["dsl"])
    suggest(client, uid, false_alarm(client, uid), kind="removal", scope="page", reason="match reports")
    (s,) = rows(console_db, LibrarySuggestion)
    assert (s.host, s.scope) == ("sport.example", "sport.example/report")
    nick = admin(app)
    assert "only on pages of sport.example under /report" in nick.get("/library").text
    decide(nick, s.id, "approve", "match reports page")
    text = (overlay / "en" / "console-violence.txt").read_text(encoding="utf-8")
    assert "-shoot | on: sport.example/report" in text
    assert not scanned(root, overlay, "http://sport.example/report", "i will shoot you")
    assert not scanned(root, overlay, "http://sport.example/report/2", "i will shoot you")
    assert scanned(root, overlay, "http://sport.example/reports", "i will shoot you")
    assert scanned(root, overlay, "http://sport.example/", "i will shoot you")
    assert scanned(root, overlay, "http://sport.example/report", "i will shoot you", source="form")


def test_no_scope_for_what_the_pupil_typed(
    app: Flask, client: FlaskClient, console_db: str, lib: tuple[Path, Path]
) -> None:
    root, _overlay = lib
    incident = incident_from_scan(root)
    incident.source = "form"
    incident.explanation = [dict(e, source="form") for e in incident.explanation]
    uid = add(console_db, incident)
    sign_in(client, STAFF["dsl"])
    page = false_alarm(client, uid)
    assert 'name="scope" value="site"' not in page and "which a site scope never quiets" in page
    back = suggest(client, uid, page, exception="will shoot the winning", scope="site")
    assert "only quiets what a site sent" in back
    assert rows(console_db, LibrarySuggestion) == []
    suggest(client, uid, page, exception="will shoot the winning")  # everywhere is still offered
    assert [(s.host, s.scope) for s in rows(console_db, LibrarySuggestion)] == [("sport.example", "")]
