"""Delivery channels of the outbox: e-mail (``netmon.alerts.sender``) and a signed webhook.

Every channel takes jobs claimed from the same outbox (``alerts`` table) and reports back through
:func:`~netmon.alerts.outbox.mark_sent` / :func:`~netmon.alerts.outbox.mark_failed`, so a webhook post is
retried with back-off through an outage and done exactly once, like an e-mail, and is listed by
``netmon alerts list``. A row's ``detail["channel"]`` names its channel (no key: ``mail``).

The webhook posts an incident or a review outcome as JSON to a CPOMS/MyConcern-style endpoint
(``NETMON_WEBHOOK_URL``) with ``X-Netmon-Signature: sha256=<hex HMAC-SHA256 of the body>`` keyed by
``NETMON_WEBHOOK_SECRET`` and a stable ``Idempotency-Key`` (the outbox row's uid: a retry after a lost
answer carries the same key, so the receiver can drop the duplicate).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.alerts.outbox import Job
from netmon.errors import ConfigError, DeliveryError
from netmon.store.alerts import PENDING, Alert
from netmon.store.base import utcnow
from netmon.store.incidents import audit

log = logging.getLogger(__name__)

MAIL, WEBHOOK = "mail", "webhook"
SIGNATURE_HEADER = "X-Netmon-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Outbox ``rule`` of an incident's webhook row: one post per incident, however many rules fired.
INCIDENT_RULE = "webhook:incident"


class Channel(Protocol):
    """Delivers one claimed job; returns the delivery id kept on the outbox row (a Message-ID, a key)."""

    name: str

    async def deliver(self, job: Job) -> str: ...


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``NETMON_WEBHOOK_URL`` and ``NETMON_WEBHOOK_SECRET`` (the secret only from the environment)."""

    url: str
    secret: str
    timeout: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSettings | None:
        """None when no URL is set; ConfigError for a URL that is not http(s)."""
        url = env.get("NETMON_WEBHOOK_URL", "").strip()
        if not url:
            return None
        check_url(url)
        return cls(url=url, secret=env.get("NETMON_WEBHOOK_SECRET", ""))


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("NETMON_WEBHOOK_URL", f"must be an http(s) URL (got {url[:100]!r})")
    return url


def sign(body: bytes, secret: str) -> str:
    """The ``X-Netmon-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """For receivers (and tests): the signature header matches ``body`` (constant-time compare)."""
    return bool(header) and hmac.compare_digest(sign(body, secret), header or "")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def body_of(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes posted (and signed): compact JSON with sorted keys, UTF-8."""
    return json.dumps(payload, default=_plain, sort_keys=True, separators=(",", ":")).encode()


def add_webhook(
    session: Session,
    *,
    kind: str,
    incident_uid: str,
    url: str,
    pupil: str = "",
    site: str = "",
    key: str = "",
    data: Mapping[str, Any] | None = None,
) -> Alert | None:
    """Queue one webhook post in the caller's transaction (never commits): ``kind`` ``incident`` (once per
    incident) or ``outcome`` (once per review change ``key``). Returns None when it is queued already."""
    rule = INCIDENT_RULE if kind == "incident" else f"webhook:{kind}:{key}"[:100]
    if session.scalar(select(Alert.id).where(Alert.rule == rule, Alert.incident_uid == incident_uid)):
        return None
    now = utcnow()
    row = Alert(
        uid=uuid.uuid4().hex, created_at=now, rule=rule, urgency="immediate", state=PENDING,
        incident_uid=incident_uid, pupil=pupil[:150], site=site, recipients=[url],
        reason=f"{kind} posted to the safeguarding record system", attempts=0, next_attempt=now,
        detail={"channel": WEBHOOK, "kind": kind, "data": json.loads(body_of(data or {}))},
    )  # fmt: skip
    session.add(row)
    session.flush()
    audit(session, "alert.created", actor="system", subject=row.uid, rule=rule, incident=incident_uid,
          channel=WEBHOOK, url=url)  # fmt: skip
    return row


def payload_of(job: Job) -> dict[str, Any]:
    """What the endpoint receives for ``job``: the incident (every recorded field) or the outcome."""
    kind = str(job.extra.get("kind") or "incident")
    incident = job.incidents[0] if job.incidents else {}
    payload: dict[str, Any] = {
        "type": f"netmon.{kind}",
        "id": job.alert_uids[0],
        "incident_uid": incident.get("uid"),
    }
    if kind == "incident":
        payload["incident"] = dict(incident)
    else:
        payload[kind] = dict(job.extra.get("data") or {})
    return payload


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer we do not follow: the post fails and is retried


class WebhookChannel:
    """Posts jobs with ``detail["channel"] == "webhook"``; blocking HTTP runs in a thread."""

    name = WEBHOOK

    def __init__(self, secret: str, *, timeout: float = 15.0) -> None:
        self.secret = secret
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    async def deliver(self, job: Job) -> str:
        if not self.secret:
            raise DeliveryError("NETMON_WEBHOOK_SECRET is not set: webhook not signed, not sent")
        url = check_url(job.recipients[0] if job.recipients else "")
        body = body_of(payload_of(job))
        key = f"netmon-{job.alert_uids[0]}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "netmon-webhook",
            SIGNATURE_HEADER: sign(body, self.secret),
            IDEMPOTENCY_HEADER: key,
        }
        await asyncio.to_thread(self._post, url, body, headers)
        return key

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook refused: HTTP {exc.code} from {urlsplit(url).netloc}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"cannot reach webhook {urlsplit(url).netloc}: {reason}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook refused: HTTP {status} from {urlsplit(url).netloc}")
