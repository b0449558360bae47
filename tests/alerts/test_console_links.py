"""Alert e-mails lead into the staff console, and a policy can make them minimal (no pupil, excerpt or URL).

Delivered through a real SMTP server (aiosmtpd on a free loopback port), in asyncio debug mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from netmon.alerts.mail import SmtpSettings
from netmon.alerts.sender import AlertSender
from netmon.config.alert_rules import parse_alerts
from netmon.config.checks import Problems
from netmon.config.policy import load_policy

from .conftest import SmtpServer, write_policy
from .helpers import record, result, writer
from .test_delivery import stop, wait_for

CONSOLE = "https://console.school.example"
RULES = """
    {top}
    recipients:
      dsl: [dsl@school.example]
    rules:
      - name: high-severity
        min_severity: 4
        to: [dsl]
        {rule}
"""


async def _deliver(store_url: str, tmp_path: Path, server: SmtpServer, top: str = "", rule: str = "") -> str:
    policy = load_policy(write_policy(tmp_path / "policy", RULES.format(top=top, rule=rule)), env={})
    with writer(store_url, policy, tmp_path) as w:
        record(
            w,
            result(
                user="alice.smith", severity=5, phrase="kms", category="suicide",
                text="honestly i just want to kms tonight", url="https://search.example/search?q=kms",
            ),
        )  # fmt: skip
    sender = AlertSender(store_url, SmtpSettings.from_env(server.env()), poll=0.1, console_url=CONSOLE)
    task = asyncio.create_task(sender.run())
    await wait_for(lambda: len(server.received) == 1)
    await stop(sender, task)
    return str(server.received[0].message["Subject"])


def _uid(text: str) -> str:
    start = text.index(f"{CONSOLE}/incidents/") + len(f"{CONSOLE}/incidents/")
    return text[start : start + 32]


async def test_full_alert_links_to_the_incident_in_the_console(
    store_url: str, tmp_path: Path, smtp_server: SmtpServer, debug_loop: asyncio.AbstractEventLoop
) -> None:
    subject = await _deliver(store_url, tmp_path, smtp_server)
    got = smtp_server.received[0]
    text, html = got.part("plain"), got.part("html")
    uid = _uid(text)
    assert len(uid) == 32 and f'href="{CONSOLE}/incidents/{uid}"' in html
    assert "alice.smith" in text and "suicide" in subject  # the full alert still carries the detail


@pytest.mark.parametrize(
    ("top", "rule"), [("minimal: true", ""), ("", "minimal: true")], ids=["top-level", "per-rule"]
)
async def test_minimal_alert_has_no_pupil_excerpt_or_url(
    store_url: str,
    tmp_path: Path,
    smtp_server: SmtpServer,
    debug_loop: asyncio.AbstractEventLoop,
    top: str,
    rule: str,
) -> None:
    subject = await _deliver(store_url, tmp_path, smtp_server, top, rule)
    got = smtp_server.received[0]
    raw = got.message.as_string()
    text, html = got.part("plain"), got.part("html")
    assert subject == "[netmon] A severity 5 incident needs review"
    assert "A severity 5 incident needs review." in text and "A severity 5 incident needs review." in html
    uid = _uid(text)
    assert f'href="{CONSOLE}/incidents/{uid}"' in html
    for secret in ("alice", "kms", "search.example", "suicide", "10.0.0.5", "tonight", "pupil"):
        assert secret not in raw, f"{secret!r} leaked into a minimal e-mail"


def test_minimal_must_be_a_boolean() -> None:
    problems = Problems()
    config = parse_alerts(
        {"minimal": "yes", "rules": [{"name": "r", "to": ["a@b.example"], "minimal": 1}]},
        "alerts.yaml",
        problems,
    )
    assert len([e for e in problems.errors if "minimal" in str(e)]) == 2
    assert config.rules[0].minimal is False
