"""A trust of schools on one store: every row carries its site, sessions stay within their site, and
writing incidents is idempotent by the id each result was given (a lost commit acknowledgement, a replayed
spill file). Real SQLite and, with NETMON_TEST_PG_URL, real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from netmon.identity.sessions import end_sessions, load_snapshot, session_for_ip, start_session
from netmon.identity.users import Account
from netmon.incidents.outcomes import ReviewChange, change_review
from netmon.incidents.spill import SPILL_NAME, entry_from_json, result_to_json
from netmon.incidents.writer import IncidentWriter
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding
from netmon.store.console import IncidentChange, IncidentReview
from netmon.store.db import make_engine
from netmon.store.identity import DeviceSession
from netmon.store.incidents import AuditEvent, Incident, IncidentMerge, audit

T0 = 1_790_000_000.0


def result(n: int, *, site: str, url: str | None = None, ip: str = "10.0.0.5", t: float = T0) -> ScanResult:
    text = f"message {n}: i want to kms"
    hit = Hit("kms", "suicide", 5, "en", "en/suicide.txt", 3, text.index("kms"), len(text), "kms", (), ())
    ctx = FlowContext(
        time=t, client_ip=ip, host="chat.example", url=url or f"https://chat.example/{n}", site=site
    )
    return ScanResult(context=ctx, findings=(TextFinding("chat", text, (hit,), "prompt"),))


def incidents(url: str) -> list[Incident]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Incident).order_by(Incident.id)))
    finally:
        engine.dispose()


@pytest.fixture
def writers(store_url: str, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    made: list[IncidentWriter] = []

    def make(state: str = "state", **kw: object) -> IncidentWriter:
        kw.setdefault("flush_interval", 0.05)
        w = IncidentWriter(store_url, spill_dir=tmp_path / state, **kw)  # type: ignore[arg-type]
        made.append(w)
        return w

    yield make
    for w in made:
        w.close(timeout=10)


# ---- every row carries its site --------------------------------------------------------------------


def test_audit_rows_take_the_site_of_the_engine_unless_given_one(store_url: str) -> None:
    gateway = make_engine(store_url, site="school-a")
    with Session(gateway) as session, session.begin():
        audit(session, "alert.sent", actor="system")  # a gateway's own row: no site named
        audit(session, "console.view", actor="lead", site="")  # the trust's lead, named explicitly
        audit(session, "console.view", actor="dsl", site="school-b")
    gateway.dispose()
    engine = make_engine(store_url, site="")
    with Session(engine) as session:
        got = [
            (e.action, e.actor, e.site) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
    engine.dispose()
    assert got == [
        ("alert.sent", "system", "school-a"),
        ("console.view", "lead", ""),
        ("console.view", "dsl", "school-b"),
    ]


def test_the_engine_site_defaults_to_netmon_site(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_SITE", "school-c")
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        audit(session, "portal.signout", actor="10.0.0.5")
    with Session(engine) as session:
        assert session.scalar(select(AuditEvent.site)) == "school-c"
    engine.dispose()


def _account(name: str) -> Account:
    return Account(name, name.title(), "pupil", "9", ("year9",), "local")


def test_sessions_at_the_same_address_in_two_schools_never_mix(store_url: str) -> None:
    a, b = make_engine(store_url, site="school-a"), make_engine(store_url, site="school-b")
    with Session(a) as session, session.begin():
        start_session(
            session, _account("amy"), ip="10.0.0.5", mac=None, user_agent="x", aup_version="1", language="en"
        )
    with Session(b) as session, session.begin():
        start_session(
            session, _account("ben"), ip="10.0.0.5", mac=None, user_agent="x", aup_version="1", language="en"
        )
    with Session(a) as session:
        snap_a, _ = load_snapshot(session)
        assert snap_a.lookup("10.0.0.5").user == "amy"  # type: ignore[union-attr]
        assert session_for_ip(session, "10.0.0.5", None).username == "amy"  # type: ignore[union-attr]
    with Session(b) as session, session.begin():
        assert load_snapshot(session)[0].lookup("10.0.0.5").user == "ben"  # type: ignore[union-attr]
        assert end_sessions(session, ip="10.0.0.5", reason="signed-out") == 1  # ben's only
    with Session(a) as session:
        assert load_snapshot(session)[0].lookup("10.0.0.5").user == "amy"  # type: ignore[union-attr]
        sites = dict(session.execute(select(DeviceSession.username, DeviceSession.site)).all())
    assert sites == {"amy": "school-a", "ben": "school-b"}
    a.dispose()
    b.dispose()


def test_reviews_and_their_history_carry_the_incident_site(store_url: str, writers) -> None:  # type: ignore[no-untyped-def]
    w = writers()
    w.submit(result(1, site="school-b"))
    w.close()
    engine = make_engine(store_url, site="")
    with Session(engine) as session, session.begin():
        incident = session.scalars(select(Incident)).one()
        change_review(session, incident, "dsl", ReviewChange(status="in_review", note="spoke to pupil"))
    with Session(engine) as session:
        assert session.scalar(select(IncidentReview.site)) == "school-b"
        assert session.scalar(select(IncidentChange.site)) == "school-b"
    engine.dispose()


# ---- de-duplication stays within a site --------------------------------------------------------------


def test_the_same_address_url_and_phrase_in_two_schools_are_two_incidents(store_url: str, writers) -> None:  # type: ignore[no-untyped-def]
    w = writers(dedup_window=timedelta(minutes=10))
    for site in ("school-a", "school-b", "school-a"):
        w.submit(result(1, site=site, url="https://chat.example/same"))
    w.close()
    got = sorted((i.site, i.count) for i in incidents(store_url))
    assert got == [("school-a", 2), ("school-b", 1)]


# ---- idempotent writing: a lost commit acknowledgement, a spill replayed twice -----------------------


def test_a_commit_whose_acknowledgement_was_lost_is_not_recorded_twice(
    store_url: str, writers, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The store commits, then the gateway hears an error (the link dropped before the reply): the batch
    is spilled and replayed; the replay must find it already there, merged repeats included."""
    lost = {"left": 1}

    def ack_lost(session: Session) -> None:
        if (
            lost["left"]
            and session.bind is not None
            and session.bind.url.render_as_string(False) == store_url
        ):
            lost["left"] -= 1
            raise OperationalError("COMMIT", {}, ConnectionResetError("server closed the connection"))

    w = writers(retry_interval=0.2, linger=0.5)
    event.listen(Session, "after_commit", ack_lost)
    try:
        before = counters.snapshot().get("recording.already", 0)
        for n in range(5):
            w.submit(result(n, site="school-a"))
        w.submit(result(0, site="school-a", t=T0 + 60))  # a repeat, merged into incident 0
        deadline = time.monotonic() + 20
        while (lost["left"] or w.store_down or (tmp_path / "state" / SPILL_NAME).exists()) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        w.close()
    finally:
        event.remove(Session, "after_commit", ack_lost)
    assert lost["left"] == 0, "the lost acknowledgement was never simulated"
    got = incidents(store_url)
    assert sorted((i.url, i.count) for i in got) == [
        ("https://chat.example/0", 2),
        *((f"https://chat.example/{n}", 1) for n in range(1, 5)),
    ]
    assert counters.snapshot().get("recording.already", 0) - before == 6
    assert not list((tmp_path / "state").glob(SPILL_NAME + "*[0-9]"))


def test_a_spill_file_replayed_again_adds_nothing(store_url: str, writers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = writers()
    entries = [(f"{n:032x}", result(n, site="school-b")) for n in range(3)]
    entries.append((f"{9:032x}", result(0, site="school-b", t=T0 + 30)))  # merged into the first
    state = tmp_path / "state2"
    state.mkdir()
    lines = "".join(json.dumps({**result_to_json(r), "rid": rid}) + "\n" for rid, r in entries)
    for _ in range(2):  # the same file twice: a replay that committed but whose progress mark was lost
        (state / SPILL_NAME).write_text(lines)
        writers("state2").close()
    w.close()
    got = incidents(store_url)
    assert sorted((i.uid, i.count) for i in got) == [(f"{0:032x}", 2), (f"{1:032x}", 1), (f"{2:032x}", 1)]
    engine = make_engine(store_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(IncidentMerge)) == 1
    engine.dispose()


def test_spill_lines_keep_the_result_id_and_old_lines_get_one() -> None:
    r = result(1, site="school-a")
    rid, again = entry_from_json(json.loads(json.dumps({**result_to_json(r), "rid": "ab" * 16})))
    assert (rid, again) == ("ab" * 16, r)
    rid_old, _ = entry_from_json(result_to_json(r))  # a line from before result ids
    assert len(rid_old) == 32 and int(rid_old, 16) >= 0


def test_incident_uids_are_the_ids_given_at_submit_and_unique(store_url: str, writers) -> None:  # type: ignore[no-untyped-def]
    w = writers()
    for n in range(50):
        w.submit(result(n, site="school-a" if n % 2 else "school-b"))
    w.close()
    uids = [i.uid for i in incidents(store_url)]
    assert len(set(uids)) == 50 and all(len(u) == 32 and int(u, 16) >= 0 for u in uids)


def test_audit_rows_written_in_a_batch_take_the_writer_site(store_url: str, tmp_path: Path) -> None:
    def rule(session: Session, found: list[Incident]) -> None:  # as the alert rules do: no site named
        for incident in found:
            audit(session, "alert.created", actor="system", subject=incident.uid)

    w = IncidentWriter(store_url, spill_dir=tmp_path, flush_interval=0.05, after_batch=[rule], site="north")
    w.submit(result(1, site="north"))
    w.close()
    engine = make_engine(store_url, site="")
    with Session(engine) as session:
        assert list(session.scalars(select(AuditEvent.site))) == ["north"]
    engine.dispose()
