"""Console pages through the Flask test client: incident page, capture, roles, reviews, export, audit."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient

from tests.console.conftest import HOSTILE, STAFF, add_incidents, csrf_of, make_incident, sign_in, snapshot
from tests.console.test_auth import audit_rows


@pytest.fixture
def uids(console_db: str) -> dict[str, str]:
    inside = make_incident(
        snapshot=snapshot(HOSTILE.replace("{evil}", "evil.test")), snapshot_type="text/html"
    )
    outside = make_incident(user="zoe", year_group="Y11", groups=["11C"], excerpt="zoe's [[secret]] text")
    image = make_incident(
        source="image", category="csam-hash", phrase="hash list", excerpt="", capture_text="",
        url="http://img.test/a.jpg", evidence={"sha256": "ab" * 32, "list": "iwf"},
    )  # fmt: skip
    formula = make_incident(user="=cmd|' /C calc'!A0", phrase="-2+3", excerpt="@SUM(A1)\x1b[31m")
    a, b, c, d = add_incidents(console_db, [inside, outside, image, formula])
    return {"inside": a, "outside": b, "image": c, "formula": d}


def test_incident_page_explains_each_phrase_once(client: FlaskClient, uids: dict[str, str]) -> None:
    sign_in(client, STAFF["dsl"])
    page = client.get(f"/incidents/{uids['inside']}").text
    assert page.count("library/en/suicide.txt:12") == 1 and page.count("library/en/self-harm.txt:3") == 1
    assert '<td class="matches">3</td>' in page and '<td class="matches">1</td>' in page
    assert "casefold" in page and "not negated" in page
    assert "i want to [[kill myself]] now" in page and "http://pages.test/p?q=1" in page
    assert f'src="/incidents/{uids["inside"]}/capture"' in page and "sandbox" in page


def test_capture_is_sanitised_and_served_inert(client: FlaskClient, uids: dict[str, str]) -> None:
    sign_in(client, STAFF["dsl"])
    r = client.get(f"/incidents/{uids['inside']}/capture")
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"
    body = r.text.lower()
    assert "i want to kill myself" in body
    for bad in ("<script", "onerror", "evil.test", "<iframe", "<object", "<link", "refresh", "javascript:",
                "<form", "url("):  # fmt: skip
        assert bad not in body, bad


def test_matched_image_is_hash_and_url_only(client: FlaskClient, uids: dict[str, str]) -> None:
    sign_in(client, STAFF["dsl"])
    page = client.get(f"/incidents/{uids['image']}").text
    assert "ab" * 32 in page and "http://img.test/a.jpg" in page
    assert "<iframe" not in page and "<img" not in page


def test_pastoral_lead_gets_403_outside_scope_on_every_url(
    client: FlaskClient, uids: dict[str, str], console_db: str
) -> None:
    sign_in(client, STAFF["pastoral"])
    queue = client.get("/incidents?status=all").text
    assert uids["inside"] in queue and uids["outside"] not in queue and "zoe" not in queue
    other = uids["outside"]
    assert client.get(f"/incidents/{other}").status_code == 403
    assert client.get(f"/incidents/{other}/capture").status_code == 403
    page = client.get(f"/incidents/{uids['inside']}")
    assert page.status_code == 200
    r = client.post(f"/incidents/{other}/review", data={"csrf": csrf_of(page.text), "status": "in_review"})
    assert r.status_code == 403
    export = client.get("/export.csv?status=all").text
    assert "zoe" not in export and uids["inside"] in export
    assert len(audit_rows(console_db, "console.incident.refused")) == 3


def test_network_admin_sees_no_captured_content(client: FlaskClient, uids: dict[str, str]) -> None:
    sign_in(client, STAFF["netadmin"])
    page = client.get(f"/incidents/{uids['inside']}")
    assert page.status_code == 200 and "library/en/suicide.txt:12" in page.text
    for content in ("[[kill myself]]", "pages.test/p?q=1", "<iframe", "i want to"):
        assert content not in page.text, content
    assert client.get(f"/incidents/{uids['inside']}/capture").status_code == 403
    assert client.get("/export.csv").status_code == 403
    assert client.get("/audit").status_code == 403
    r = client.post(
        f"/incidents/{uids['inside']}/review", data={"csrf": csrf_of(page.text), "status": "closed"}
    )
    assert r.status_code == 403


def test_auditor_sees_only_the_audit_log(client: FlaskClient, uids: dict[str, str]) -> None:
    sign_in(client, STAFF["auditor"])
    for path in ("/incidents", f"/incidents/{uids['inside']}", f"/incidents/{uids['inside']}/capture",
                 "/export.csv"):  # fmt: skip
        assert client.get(path).status_code == 403, path
    assert client.get("/audit").status_code == 200


def test_outcome_history_and_audit(client: FlaskClient, uids: dict[str, str], console_db: str) -> None:
    sign_in(client, STAFF["deputy"])
    uid = uids["inside"]
    page = client.get(f"/incidents/{uid}")
    token = csrf_of(page.text)
    r = client.post(f"/incidents/{uid}/review", data={"csrf": token, "status": "closed", "outcome": ""})
    assert "closing an incident needs an outcome" in client.get(r.headers["Location"]).text
    client.post(f"/incidents/{uid}/review", data={"csrf": token, "status": "in_review", "assignee": "pat",
                                                  "note": "spoke to <b>form tutor</b>"})  # fmt: skip
    client.post(f"/incidents/{uid}/review", data={"csrf": token, "status": "closed",
                                                  "outcome": "referred_dsl"})  # fmt: skip
    page = client.get(f"/incidents/{uid}").text
    assert "status new → in_review" in page and "assignee - → pat" in page
    assert "spoke to &lt;b&gt;form tutor&lt;/b&gt;" in page
    assert "outcome - → referred_dsl" in page and "<strong>closed</strong>" in page
    r = client.post(f"/incidents/{uid}/review", data={"csrf": token, "assignee": "nick"})
    assert r.status_code == 400  # a network admin cannot be assigned an incident
    changes = audit_rows(console_db, "console.incident.change")
    assert [e.actor for e in changes] == ["dan", "dan"] and all(e.subject == uid for e in changes)
    queue = client.get("/incidents?status=closed").text
    assert uid in queue and 'id="tab-closed">closed <span class="count">1</span>' in queue


def test_every_view_writes_an_audit_row(client: FlaskClient, uids: dict[str, str], console_db: str) -> None:
    sign_in(client, STAFF["dsl"])
    client.get("/incidents")
    client.get(f"/incidents/{uids['inside']}")
    client.get(f"/incidents/{uids['inside']}/capture")
    client.get("/export.csv?severity=5").get_data()
    client.get("/audit")
    events = audit_rows(console_db)
    by_action = {e.action: e for e in events}
    for action in ("console.signin", "console.queue.view", "console.incident.view", "console.capture.view",
                   "console.export", "console.audit.view"):  # fmt: skip
        assert action in by_action, action
        assert by_action[action].actor == "dina" and by_action[action].detail["address"] == "127.0.0.1"
    assert by_action["console.capture.view"].subject == uids["inside"]
    assert by_action["console.export"].detail["filters"]["min_severity"] == 5


def test_csv_export_is_spreadsheet_safe(client: FlaskClient, uids: dict[str, str]) -> None:
    sign_in(client, STAFF["dsl"])
    r = client.get("/export.csv?status=all")
    assert (
        r.headers["Content-Type"].startswith("text/csv") and "attachment" in r.headers["Content-Disposition"]
    )
    text = r.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 4 and {"status", "outcome", "assignee"} <= set(rows[0])
    bad = next(row for row in rows if row["uid"] == uids["formula"])
    assert bad["user"].startswith("'=") and bad["phrase"] == "'-2+3"
    assert bad["excerpt"].startswith("'@") and "\x1b" not in bad["excerpt"]
    for row in rows:
        for value in row.values():
            assert not value.lstrip().startswith(("=", "+", "-", "@")), value
