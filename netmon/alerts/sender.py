"""Delivery of outbox alerts by e-mail (aiosmtplib), with back-off through outages and across restarts.

:class:`AlertSender` runs as an asyncio task (in mitmdump's loop, or in ``netmon alerts send``). Every
database step runs in a thread (``asyncio.to_thread``); SMTP is native asyncio. Each alert is sent once:
it is marked ``sent`` as soon as the server accepts it, and a retry of an unmarked alert carries the same
Message-ID.

Jobs whose outbox row names another channel (``detail["channel"]``: the signed webhook of
:mod:`netmon.alerts.channels`) go to that channel instead, with the same marking and back-off. Every
``escalate_every`` seconds the sender also writes due escalation steps (:mod:`netmon.alerts.escalation`).
E-mails link to the incident in the staff console when ``NETMON_CONSOLE_URL`` is set; a rule's
``minimal`` e-mail carries only the severity and that link.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from netmon.alerts.channels import WEBHOOK, Channel, WebhookChannel
from netmon.alerts.escalation import escalate_due
from netmon.alerts.mail import LONDON, build_message, message_id, render
from netmon.alerts.outbox import (
    Job,
    claim_due,
    mark_failed,
    mark_sent,
    new_token,
    release_stale_claims,
    retry_now,
    waiting_for_server,
)
from netmon.alerts.problems import ProblemNotifier
from netmon.config.settings import SmtpSettings
from netmon.errors import DeliveryError
from netmon.ops import counters
from netmon.store.db import make_engine

log = logging.getLogger(__name__)


def subject_for(job: Job) -> str:
    """Only category and severity (a minimal alert: only severity): the subject shows on lock screens."""
    real = [i for i in job.incidents if not i.get("missing")]
    top = max((int(i["severity"]) for i in real), default=0)
    again = "Escalated: " if job.extra.get("escalation_step") else ""
    if job.extra.get("minimal"):
        if len(job.incidents) == 1:
            return f"[netmon] {again}A severity {top} incident needs review"
        return f"[netmon] {len(job.incidents)} incidents need review, highest severity {top}"
    if job.urgency == "immediate" and len(real) == 1:
        return f"[netmon] {again}Safeguarding alert: {real[0]['category']}, severity {real[0]['severity']}"
    categories = ", ".join(sorted({str(i["category"]) for i in real}))
    return f"[netmon] Safeguarding digest: {len(job.incidents)} alerts ({categories}), highest severity {top}"


def incident_link(console_url: str, uid: str) -> str:
    """``{NETMON_CONSOLE_URL}/incidents/{uid}`` (empty without a console URL)."""
    return f"{console_url.rstrip('/')}/incidents/{uid}" if console_url else ""


def compose(job: Job, settings: SmtpSettings, tz: ZoneInfo = LONDON, console_url: str = "") -> EmailMessage:
    subject = subject_for(job)
    minimal = bool(job.extra.get("minimal"))
    template = "alert_minimal" if minimal else "alert"
    context = {
        "links": [incident_link(console_url, str(i["uid"])) for i in job.incidents],
        "escalation": job.extra if job.extra.get("escalation_step") else None,
        "subject": subject,
        "rule": job.rule,
        "urgency": job.urgency,
        "incidents": list(job.incidents),
        "reasons": list(job.reasons),
        "folded": list(job.folded),
        "alert_uids": list(job.alert_uids),
        "tz": tz,
    }
    return build_message(
        subject=subject,
        sender=settings.mail_from,
        recipients=job.recipients,
        text=render(f"{template}.txt.j2", **context),
        html=render(f"{template}.html.j2", **context),
        msg_id=message_id(job.key, settings.domain),
    )


def retry_cap_from_env(env: Mapping[str, str]) -> float:
    try:
        return max(1.0, float(env.get("NETMON_ALERT_RETRY_MAX", "") or 30.0))
    except ValueError:
        return 30.0


class AlertSender:
    """Delivers due alerts; call :meth:`run` as a task and :meth:`stop` (or cancel it) to end.

    ``poll`` is how often the outbox is checked (seconds); ``retry_cap`` the longest back-off between
    attempts during an outage (``NETMON_ALERT_RETRY_MAX``, default 30 s).
    """

    def __init__(
        self,
        db: str | Engine,
        settings: SmtpSettings,
        *,
        poll: float = 1.0,
        retry_cap: float | None = None,
        tz: ZoneInfo | None = None,
        console_url: str | None = None,
        channels: Mapping[str, Channel] | None = None,
        escalate_every: float = 15.0,
    ) -> None:
        self.engine = make_engine(db) if isinstance(db, str) else db
        self._own_engine = isinstance(db, str)
        self.settings = settings
        self.poll = poll
        self.retry_cap = retry_cap if retry_cap is not None else retry_cap_from_env(os.environ)
        self.tz = tz or LONDON
        self.token = new_token()
        env = os.environ
        self.console_url = (env.get("NETMON_CONSOLE_URL", "") if console_url is None else console_url).strip()
        self.channels: dict[str, Channel] = dict(channels or {})
        self.channels.setdefault(WEBHOOK, WebhookChannel(env.get("NETMON_WEBHOOK_SECRET", "")))
        self.escalate_every = escalate_every
        self._escalated_at = 0.0
        self.problems = ProblemNotifier(settings)  # netmon's own problems, mailed without the store
        self._stop = asyncio.Event()
        self.sent = 0
        self.failed = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        log.info(
            "alert sender started (SMTP %s:%d, tls %s)",
            self.settings.host,
            self.settings.port,
            self.settings.tls,
        )
        released = False
        # look-ups that block (the CA store, this host's name for EHLO) happen once, off the loop
        await asyncio.to_thread(self.settings.client_kwargs)
        try:
            while not self._stop.is_set():
                try:
                    if not released:
                        await asyncio.to_thread(release_stale_claims, self.engine, self.token)
                        released = True
                    await self.problems.check()
                    await self._escalate()
                    await self.run_once()
                    if await asyncio.to_thread(waiting_for_server, self.engine) and await self._reachable():
                        count = await asyncio.to_thread(retry_now, self.engine)
                        log.info("SMTP server reachable again: retrying %d alert(s) now", count)
                        continue
                except SQLAlchemyError as exc:
                    counters.incr("alerts.store-error")
                    log.error("alert sender cannot use the store (will retry): %s", exc.__class__.__name__)
                except Exception:  # noqa: BLE001 - the sender outlives any one fault; alerts stay queued
                    counters.incr("alerts.sender-error")
                    log.exception("alert sender error (will retry)")
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=self.poll)
                except TimeoutError:
                    pass
        finally:
            if self._own_engine:
                self.engine.dispose()
            log.info("alert sender stopped")

    async def _escalate(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._escalated_at < self.escalate_every:
            return
        self._escalated_at = loop.time()
        if count := await asyncio.to_thread(escalate_due, self.engine):
            counters.incr("alerts.escalated", count)

    async def _reachable(self) -> bool:
        """A cheap TCP probe, so that delivery resumes within a poll of the server coming back."""
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.settings.host, self.settings.port),
                timeout=min(5.0, self.settings.timeout),
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return True

    async def run_once(self) -> int:
        """Claim and deliver every due alert once; return how many e-mails were sent."""
        jobs = await asyncio.to_thread(claim_due, self.engine, self.token)
        if not jobs:
            return 0
        sent = 0
        mail = [job for job in jobs if job.channel == "mail"]
        for job in jobs:
            if job.channel != "mail":
                sent += await self._deliver(job)
        if not mail:
            return sent
        jobs = mail
        client = aiosmtplib.SMTP(**self.settings.client_kwargs())
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = f"cannot connect to SMTP server {self.settings.host}:{self.settings.port}: {_why(exc)}"
            for job in jobs:
                await self._failed(job, reason)
            return 0
        try:
            for index, job in enumerate(jobs):
                try:
                    msg = await asyncio.to_thread(compose, job, self.settings, self.tz, self.console_url)
                except Exception as exc:  # noqa: BLE001 - one unrenderable alert must not block the rest
                    log.exception("alert %s could not be rendered", job.key)
                    await self._failed(job, f"cannot render the e-mail: {_why(exc)}")
                    continue
                try:
                    errors, _ = await client.send_message(msg)
                except (
                    aiosmtplib.SMTPServerDisconnected,
                    aiosmtplib.SMTPTimeoutError,
                    OSError,
                    TimeoutError,
                ) as exc:
                    reason = f"SMTP connection lost: {_why(exc)}"
                    for rest in jobs[index:]:
                        await self._failed(rest, reason)
                    break
                except aiosmtplib.SMTPException as exc:
                    await self._failed(job, f"SMTP server refused the message: {_why(exc)}")
                    continue
                if errors:
                    log.warning("alert %s: some recipients refused: %s", job.key, ", ".join(sorted(errors)))
                await asyncio.to_thread(mark_sent, self.engine, job, self.token, str(msg["Message-ID"]))
                counters.incr("alerts.sent", len(job.alert_ids))
                self.sent += len(job.alert_ids)
                sent += 1
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
        return sent

    async def _deliver(self, job: Job) -> int:
        """A job for another channel (the webhook): delivered, marked, or failed with back-off."""
        channel = self.channels.get(job.channel)
        if channel is None:
            await self._failed(job, f"no delivery channel {job.channel!r} in this sender")
            return 0
        try:
            delivery_id = await channel.deliver(job)
        except DeliveryError as exc:
            await self._failed(job, str(exc))
            return 0
        await asyncio.to_thread(mark_sent, self.engine, job, self.token, delivery_id)
        counters.incr(f"alerts.sent-{job.channel}", len(job.alert_ids))
        self.sent += len(job.alert_ids)
        return 1

    async def _failed(self, job: Job, reason: str) -> None:
        counters.incr("alerts.failed", len(job.alert_ids))
        self.failed += len(job.alert_ids)
        await asyncio.to_thread(mark_failed, self.engine, job, self.token, reason, cap=self.retry_cap)


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:400]
