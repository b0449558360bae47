"""netmon's own problems reach the admins directly over SMTP (the store may be the thing that is down)."""

from __future__ import annotations

import asyncio
import time

from netmon.alerts.problems import ProblemNotifier
from netmon.config.settings import SmtpSettings
from netmon.ops import counters
from tests.alerts.conftest import SmtpServer


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_store_problem_and_its_end_are_mailed_once_each(smtp_server: SmtpServer) -> None:
    counters.reset()
    notifier = ProblemNotifier(SmtpSettings.from_env(smtp_server.env()), ["it@school.example"])
    await notifier.check()
    assert smtp_server.received == []
    counters.problem("store", "incidents cannot be written to the store since 2026-12-04 07:00:00 UTC")
    await notifier.check()
    await notifier.check()  # the same problem: not mailed again
    await _until(lambda: len(smtp_server.received) == 1)
    first = smtp_server.received[0]
    assert first.message["Subject"] == "[netmon] Problem: store"
    assert first.rcpt_tos == ["it@school.example"]
    assert "cannot be written" in first.part("plain")
    counters.problem("store", None)
    await notifier.check()
    await _until(lambda: len(smtp_server.received) == 2)
    assert smtp_server.received[1].message["Subject"] == "[netmon] Resolved: store"


async def test_a_mail_that_fails_is_tried_again(smtp_server: SmtpServer) -> None:
    counters.reset()
    notifier = ProblemNotifier(SmtpSettings.from_env(smtp_server.env()), ["it@school.example"])
    smtp_server.stop()
    counters.problem("store", "down")
    await notifier.check()
    assert counters.snapshot().get("alerts.problem-mail-failed") == 1
    smtp_server.start()
    await notifier.check()
    await _until(lambda: len(smtp_server.received) == 1)
    counters.reset()
