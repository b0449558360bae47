"""Admin alerts for problems of netmon itself (the store cannot be written...), mailed directly.

The outbox lives in the store, so a store that is down cannot carry the message that it is down. The
sender's task asks :func:`netmon.ops.counters.problems` at every turn; a new problem is mailed at once to
``NETMON_ADMIN_TO`` (else ``NETMON_ALERT_TO``), straight over SMTP, and so is its end. A mail that fails
is tried again at the next turn. The message names the part and what is wrong, never a pupil or content.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import aiosmtplib

from netmon.alerts.mail import build_message
from netmon.config.settings import SmtpSettings
from netmon.ops import counters

log = logging.getLogger(__name__)


def admin_recipients(env: Mapping[str, str]) -> list[str]:
    raw = env.get("NETMON_ADMIN_TO", "").strip() or env.get("NETMON_ALERT_TO", "").strip()
    return [a.strip() for a in raw.split(",") if a.strip()]


class ProblemNotifier:
    def __init__(self, settings: SmtpSettings, recipients: list[str] | None = None) -> None:
        self.settings = settings
        self.recipients = admin_recipients(os.environ) if recipients is None else recipients
        self.told: dict[str, str] = {}  # part -> the problem already mailed

    async def check(self) -> None:
        """Mail every problem that is new since the last turn, and every one that has ended."""
        if not self.recipients:
            return
        now = counters.problems()
        for part, message in now.items():
            if self.told.get(part) is None and await self._mail(
                f"[netmon] Problem: {part}", f"netmon on this gateway has a problem.\n\n{part}: {message}\n"
            ):
                self.told[part] = message
        for part in [p for p in self.told if p not in now]:
            if await self._mail(f"[netmon] Resolved: {part}", f"{part} works again.\n"):
                del self.told[part]

    async def _mail(self, subject: str, text: str) -> bool:
        message = build_message(
            subject=subject,
            sender=self.settings.mail_from,
            recipients=self.recipients,
            text=text,
            html=f"<pre>{_escape(text)}</pre>",
        )
        try:
            client = aiosmtplib.SMTP(**self.settings.client_kwargs())
            async with client:  # logs in by itself when NETMON_SMTP_USER is set
                await client.send_message(message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            counters.incr("alerts.problem-mail-failed")
            log.warning("could not mail the admins about %r: %s", subject, exc.__class__.__name__)
            return False
        counters.incr("alerts.problem-mailed")
        return True


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
