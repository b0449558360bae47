"""The signed webhook channel: incidents and review outcomes posted as JSON through the outbox to a real
HTTP server on loopback that checks the HMAC-SHA256 signature; retried with back-off, exactly once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.alerts.channels import SIGNATURE_HEADER, WebhookChannel, sign, verify
from netmon.alerts.mail import SmtpSettings
from netmon.alerts.rules import RuleEngine
from netmon.alerts.sender import AlertSender
from netmon.cli import main
from netmon.config.policy import Policy, hit_filter, load_policy
from netmon.incidents.outcomes import ReviewChange, change_review, queue_outcome_webhook
from netmon.incidents.writer import IncidentWriter
from netmon.store.alerts import SENT, Alert
from netmon.store.db import make_engine
from netmon.store.incidents import Incident

from .conftest import SmtpServer, write_policy
from .helpers import record, result
from .test_delivery import stop, wait_for

SECRET = "s3cret-for-tests"  # noqa: S105 - a test key
POLICY = """
    recipients:
      dsl: [dsl@school.example]
    rules:
      - name: high-severity
        min_severity: 4
        to: [dsl]
        webhook: true
"""


class Receiver:
    """A CPOMS-like endpoint: keeps what it accepted by idempotency key; fails the first ``fail`` posts."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts: list[dict[str, Any]] = []
        self.accepted: dict[str, dict[str, Any]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(body, SECRET, self.headers.get(SIGNATURE_HEADER))
                key = self.headers.get("Idempotency-Key", "")
                receiver.attempts.append({"key": key, "signed": ok})
                if not ok:
                    self.send_response(401)
                elif len(receiver.attempts) <= receiver.fail:
                    self.send_response(503)
                else:
                    receiver.accepted.setdefault(key, json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/netmon"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    yield r
    r.close()


def _record(url: str, policy: Policy, tmp_path: Path, hook: str, *results: Any) -> None:
    w = IncidentWriter(
        url, hit_filter=hit_filter(policy), after_batch=(RuleEngine(policy, webhook_url=hook),),
        spill_dir=tmp_path / "state", flush_interval=0.05,
    )  # fmt: skip
    try:
        record(w, *results)
    finally:
        w.close(timeout=30)


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    assert sign(body, "k") == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert verify(body, "k", sign(body, "k")) and not verify(body + b" ", "k", sign(body, "k"))
    assert not verify(body, "k", None)


async def test_incident_and_outcome_posted_signed_retried_and_exactly_once(
    store_url: str,
    tmp_path: Path,
    smtp_server: SmtpServer,
    receiver: Receiver,
    debug_loop: asyncio.AbstractEventLoop,
) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", POLICY), env={})
    _record(store_url, policy, tmp_path, receiver.url, result(user="alice", severity=5, category="suicide"))
    engine = make_engine(store_url)
    with Session(engine) as db, db.begin():  # what the console does when an outcome is recorded
        incident = db.scalars(select(Incident)).one()
        entry = change_review(db, incident, "dina", ReviewChange(status="closed", outcome="referred_dsl"))
        assert entry is not None
        assert queue_outcome_webhook(db, incident, entry, receiver.url)
        uid = incident.uid
    sender = AlertSender(
        engine, SmtpSettings.from_env(smtp_server.env()), poll=0.1, retry_cap=0.5,
        channels={"webhook": WebhookChannel(SECRET)},
    )  # fmt: skip
    task = asyncio.create_task(sender.run())
    await wait_for(lambda: len(receiver.accepted) == 2 and len(smtp_server.received) == 1)
    await asyncio.sleep(1.0)  # nothing more arrives
    await stop(sender, task)
    assert all(a["signed"] for a in receiver.attempts)
    assert len(receiver.attempts) == 4  # two refused with 503, then each of the two once
    posted = {p["type"]: p for p in receiver.accepted.values()}
    assert posted["netmon.incident"]["incident"]["uid"] == uid
    assert posted["netmon.incident"]["incident"]["category"] == "suicide"
    outcome = posted["netmon.outcome"]["outcome"]
    assert (outcome["status"], outcome["outcome"], outcome["actor"]) == ("closed", "referred_dsl", "dina")
    assert {a["key"] for a in receiver.attempts} == set(receiver.accepted)  # a retry carries the same key
    with Session(engine) as db:
        rows = db.scalars(select(Alert).where(Alert.rule.like("webhook:%"))).all()
        assert sorted(r.state for r in rows) == [SENT, SENT]
        assert {r.message_id for r in rows} == set(receiver.accepted)
        assert max(r.attempts for r in rows) >= 2
    engine.dispose()
    listed = CliRunner().invoke(main, ["alerts", "list", "--db", store_url])
    assert listed.exit_code == 0, listed.output
    assert "webhook:incident" in listed.output and "webhook:outcome:" in listed.output


async def test_unsigned_webhook_waits_for_the_secret(
    store_url: str, tmp_path: Path, receiver: Receiver, debug_loop: asyncio.AbstractEventLoop
) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", POLICY), env={})
    _record(store_url, policy, tmp_path, receiver.url, result(severity=5))
    sender = AlertSender(
        store_url, SmtpSettings(host="127.0.0.1", port=9), poll=0.1, channels={"webhook": WebhookChannel("")}
    )
    await sender.run_once()
    assert receiver.attempts == []
    engine = make_engine(store_url)
    with Session(engine) as db:
        row = db.scalars(select(Alert).where(Alert.rule == "webhook:incident")).one()
        assert row.state == "pending" and "NETMON_WEBHOOK_SECRET" in (row.last_error or "")
    engine.dispose()
