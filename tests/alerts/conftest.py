"""Fixtures for alerts and reports: a real aiosmtpd server on a free loopback port, incidents in a real
store, policy directories in tmp_path, and asyncio debug mode that fails on slow callbacks."""

from __future__ import annotations

import asyncio
import email
import email.policy
import gc
import logging
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from netmon.store.db import make_engine
from netmon.store.incidents import Incident


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None
        return str(body.get_content())


class Handler:
    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        assert isinstance(msg, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server that can be stopped and started again on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = Handler()
        self.controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def env(self) -> dict[str, str]:
        return {
            "NETMON_SMTP_HOST": "127.0.0.1",
            "NETMON_SMTP_PORT": str(self.port),
            "NETMON_SMTP_TLS": "none",
            "NETMON_MAIL_FROM": "netmon@school.example",
        }


@pytest.fixture
def smtp_server(free_port: int) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port)
    server.start()
    yield server
    server.stop()


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # the test's own set-up (writing incidents, loading policy) is not product code on the loop
        if "took" in message and "Executing" in message and "coro=<test_" not in message:
            self.slow.append(message)


@pytest.fixture
async def debug_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """Asyncio debug mode; the test fails when a callback blocks the loop for more than 0.25 s."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.25
    # A full garbage collection of the whole pytest process (hundreds of MB of earlier tests' objects)
    # can itself take a quarter second and would be blamed on whichever callback it interrupts.
    gc.collect()
    gc.freeze()
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield loop
    finally:
        logger.removeHandler(handler)
        gc.unfreeze()
    assert not handler.slow, f"slow callbacks blocked the event loop: {handler.slow}"


def write_policy(directory: Path, alerts: str, school: str | None = None) -> Path:
    """A policy directory with the given alerts.yaml (and school.yaml, default: netmon's own)."""
    from netmon.config.paths import DEFAULT_POLICY_DIR

    directory.mkdir(parents=True, exist_ok=True)
    school_text = textwrap.dedent(school) if school else (DEFAULT_POLICY_DIR / "school.yaml").read_text()
    (directory / "school.yaml").write_text(school_text)
    (directory / "alerts.yaml").write_text(textwrap.dedent(alerts))
    return directory


def add_incident(url: str, **fields: Any) -> str:
    """Insert one incident (committed) and return its uid."""
    now = fields.pop("time", datetime.now(UTC))
    uid = fields.pop("uid", uuid.uuid4().hex)
    values: dict[str, Any] = {
        "uid": uid,
        "time": now,
        "last_seen": now,
        "count": 1,
        "site": "",
        "client_ip": "10.0.0.5",
        "user": "pupil1",
        "role": "pupil",
        "year_group": "9",
        "groups": [],
        "host": "example.org",
        "url": "https://example.org/page",
        "source": "page",
        "category": "self_harm",
        "severity": 4,
        "phrase": "cut myself",
        "phrases": [],
        "excerpt": "I want to [[cut myself]] tonight",
        "explanation": [],
        "evidence": {},
        "dedup_key": uuid.uuid4().hex,
        "capture_text": "",
    }
    values.update(fields)
    if not values["phrases"]:
        values["phrases"] = [
            {"phrase": values["phrase"], "category": values["category"], "severity": values["severity"]}
        ]
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        session.add(Incident(**values))
    engine.dispose()
    return uid
