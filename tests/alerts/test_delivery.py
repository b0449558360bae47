"""Delivery through a real SMTP server (aiosmtpd on a free loopback port), in asyncio debug mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.alerts.mail import SmtpSettings
from netmon.alerts.sender import AlertSender
from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.config.policy import load_policy
from netmon.store.alerts import Alert
from netmon.store.db import make_engine
from netmon.store.incidents import AuditEvent, Incident

from .conftest import SmtpServer, write_policy
from .helpers import record, result, writer

ENV = {"NETMON_ALERT_TO": "dsl@school.example, deputy@school.example"}


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def run_sender(url: str, server: SmtpServer, **kwargs) -> tuple[AlertSender, asyncio.Task[None]]:  # type: ignore[no-untyped-def]
    sender = AlertSender(url, SmtpSettings.from_env(server.env()), poll=0.1, **kwargs)
    return sender, asyncio.create_task(sender.run())


async def stop(sender: AlertSender, task: asyncio.Task[None]) -> None:
    sender.stop()
    await asyncio.wait_for(task, 10)


def audit_actions(url: str) -> list[tuple[str, str | None]]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = [
            (e.action, e.subject)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith("alert.")
        ]
    engine.dispose()
    return rows


async def test_immediate_alert_arrives_with_content_and_recipients(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    with writer(store_url, policy, tmp_path) as w:
        record(
            w,
            result(
                user="alice",
                role="pupil",
                year_group="8",
                severity=5,
                phrase="kms",
                category="suicide",
                text="honestly i just want to kms tonight",
                source="search",
                url="https://search.example/search?q=kms",
            ),
        )
    sender, task = await run_sender(store_url, smtp_server)
    await wait_for(lambda: len(smtp_server.received) == 1)
    await stop(sender, task)
    mail = smtp_server.received[0]
    assert sorted(mail.rcpt_tos) == ["deputy@school.example", "dsl@school.example"]
    assert mail.mail_from == "netmon@school.example"
    engine = make_engine(store_url)
    with Session(engine) as session:
        incident = session.scalars(select(Incident)).one()
        alert = session.scalars(select(Alert)).one()
    engine.dispose()
    subject = str(mail.message["Subject"])
    assert "suicide" in subject and "5" in subject
    assert "kms" not in subject and "alice" not in subject
    assert mail.message["Message-ID"] == f"<netmon-{alert.uid}@school.example>"
    text, html = mail.part("plain"), mail.part("html")
    for body in (text, html):
        assert "alice" in body and "search.example" in body and incident.uid in body
        assert (
            "suicide" in body
            and "high-severity" in body
            and "severity 5 &gt;= 4" in body.replace(">=", "&gt;=")
        )
    assert "<mark>kms</mark>" in html
    assert "[[kms]]" in text
    assert (
        alert.state == "sent" and alert.sent_at is not None and alert.message_id == mail.message["Message-ID"]
    )
    assert [a for a, _ in audit_actions(store_url)] == ["alert.created", "alert.sent"]


async def test_hostile_html_in_a_capture_arrives_escaped(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    hostile = (
        '<script>alert(1)</script><img src=x onerror="steal()"> <a href="http://evil">kill myself</a> '
        "</mark><b>[[ fake ]]</b>"
    )
    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    with writer(store_url, policy, tmp_path) as w:
        record(
            w,
            result(
                user='<b>bob</b>"',
                severity=5,
                phrase="kill myself",
                category="suicide",
                text=hostile,
                url='https://evil.example/"><script>x</script>',
            ),
        )
    sender, task = await run_sender(store_url, smtp_server)
    await wait_for(lambda: len(smtp_server.received) == 1)
    await stop(sender, task)
    html = smtp_server.received[0].part("html")
    assert "<script" not in html and "<img" not in html and "<a href" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html
    assert "<mark>kill myself</mark>" in html
    assert html.count("<mark>") == html.count("</mark>")
    assert "&lt;b&gt;bob&lt;/b&gt;" in html


async def test_terminal_escapes_and_bidi_in_a_capture_arrive_inert(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    hostile = "\x1b[2J\x1b]0;owned\x07 i want to kill myself \u202etxt.exe\x00"
    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    with writer(store_url, policy, tmp_path) as w:
        record(
            w, result(user="eve\x1b[31m", severity=5, phrase="kill myself", category="suicide", text=hostile)
        )
    sender, task = await run_sender(store_url, smtp_server)
    await wait_for(lambda: len(smtp_server.received) == 1)
    await stop(sender, task)
    for part in ("plain", "html"):
        body = smtp_server.received[0].part(part)
        assert not any(c in body for c in "\x1b\x07\x00\u202e"), f"raw control characters in the {part} part"
        assert "\ufffd" in body, "a NUL is stored (and shown) as U+FFFD: PostgreSQL cannot hold NUL"
        assert "\\u001b" in body and "\\u202e" in body, f"escapes not shown inert in the {part} part"


async def test_outage_queues_then_every_alert_arrives_exactly_once_after_restart(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    smtp_server.stop()
    sender, task = await run_sender(store_url, smtp_server)
    with writer(store_url, policy, tmp_path) as w:
        for i in range(5):
            record(w, result(user=f"p{i}", url=f"https://e.org/{i}"))
    await wait_for(lambda: sender.failed >= 5)
    await stop(sender, task)  # the proxy stops while the server is still down
    assert smtp_server.received == []
    assert "alert.failed" in {a for a, _ in audit_actions(store_url)}

    # a long outage: the back-off has grown to ten minutes
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        session.execute(update(Alert).values(next_attempt=datetime.now(UTC) + timedelta(minutes=10)))
    engine.dispose()

    # the proxy comes back first (a new sender task), then the SMTP server
    sender2, task2 = await run_sender(store_url, smtp_server)
    await asyncio.sleep(0.5)
    smtp_server.start()
    await wait_for(lambda: len(smtp_server.received) == 5, timeout=5)  # a probe notices the server
    await asyncio.sleep(1.5)  # nothing more arrives
    await stop(sender2, task2)
    ids = [m.message["Message-ID"] for m in smtp_server.received]
    assert len(set(ids)) == 5
    engine = make_engine(store_url)
    with Session(engine) as session:
        rows = session.scalars(select(Alert)).all()
        failed = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.failed")).all()
    engine.dispose()
    assert all(a.state == "sent" for a in rows)
    assert {f"<netmon-{a.uid}@school.example>" for a in rows} == set(ids)
    assert all("connect" in e.detail["reason"] for e in failed)


def test_outage_then_a_new_process_delivers_each_alert_once(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    smtp_server.stop()
    with writer(store_url, policy, tmp_path) as w:
        record(w, result(user="a", url="https://e.org/1"), result(user="b", url="https://e.org/2"))
    env = {**os.environ, **smtp_server.env(), "NETMON_ALERT_RETRY_MAX": "1"}
    cmd = [sys.executable, "-m", "netmon", "alerts", "send", "--once", "--db", store_url]
    down = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 1, down.stderr
    assert "0 alert(s) sent" in down.stdout
    smtp_server.start()
    time.sleep(1.2)  # the back-off of one failed attempt (capped at 1 s here)
    up = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "0 alert(s) sent" in again.stdout
    assert len(smtp_server.received) == 2
    assert len({m.message["Message-ID"] for m in smtp_server.received}) == 2


async def test_two_senders_never_send_the_same_alert(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, env=ENV)
    a, ta = await run_sender(store_url, smtp_server)
    b, tb = await run_sender(store_url, smtp_server)
    with writer(store_url, policy, tmp_path) as w:
        for i in range(10):
            w.submit(result(user=f"p{i}", url=f"https://e.org/{i}"))
        assert w.flush(30)
    await wait_for(lambda: len(smtp_server.received) >= 10)
    await asyncio.sleep(1.0)
    await stop(a, ta)
    await stop(b, tb)
    assert len(smtp_server.received) == 10
    assert len({m.message["Message-ID"] for m in smtp_server.received}) == 10


DIGEST = """
    rules:
      - name: daily-digest
        urgency: digest
        to: [dsl@school.example]
"""


async def test_digest_sends_one_email_for_its_alerts(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    policy = load_policy(write_policy(tmp_path / "policy", DIGEST), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, *(result(user=f"p{i}", url=f"https://e.org/{i}", severity=2 + i) for i in range(3)))
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():  # the digest time has come
        session.execute(update(Alert).values(next_attempt=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()
    sender, task = await run_sender(store_url, smtp_server)
    await wait_for(lambda: len(smtp_server.received) == 1)
    await asyncio.sleep(0.5)
    await stop(sender, task)
    assert len(smtp_server.received) == 1
    mail = smtp_server.received[0]
    assert "digest" in str(mail.message["Subject"]) and "highest severity 4" in str(mail.message["Subject"])
    html = mail.part("html")
    assert all(f"p{i}" in html for i in range(3))


COOLDOWN = """
    rules:
      - name: calm
        cooldown: 1h
        to: [dsl@school.example]
"""


async def test_cooldown_sends_one_email_listing_the_folded_incidents(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    policy = load_policy(write_policy(tmp_path / "policy", COOLDOWN), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(w, *(result(url=f"https://e.org/{i}") for i in range(3)))
    sender, task = await run_sender(store_url, smtp_server)
    await wait_for(lambda: len(smtp_server.received) == 1)
    await asyncio.sleep(0.5)
    await stop(sender, task)
    assert len(smtp_server.received) == 1
    assert "folded 2 further incident" in smtp_server.received[0].part("plain")
