"""SMTP settings from the environment, and rendering of e-mails from jinja2 templates (autoescaped)."""

from __future__ import annotations

import functools
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from markupsafe import Markup, escape

from netmon.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent / "templates"
TLS_MODES = ("none", "starttls", "ssl")
_MARKED = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    tls: str = "none"
    mail_from: str = "netmon@localhost"
    timeout: float = 30.0
    cafile: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings:
        """Read ``NETMON_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_TLS`` (none|starttls|ssl),
        ``_TIMEOUT``, ``_CAFILE`` and ``NETMON_MAIL_FROM``; raise :class:`ConfigError` when invalid."""
        tls = env.get("NETMON_SMTP_TLS", "").strip().lower() or "none"
        if tls not in TLS_MODES:
            raise ConfigError("NETMON_SMTP_TLS", f"must be none, starttls or ssl (got {tls!r})")
        default_port = {"none": 25, "starttls": 587, "ssl": 465}[tls]
        raw_port = env.get("NETMON_SMTP_PORT", "").strip()
        try:
            port = int(raw_port) if raw_port else default_port
        except ValueError:
            raise ConfigError("NETMON_SMTP_PORT", f"must be a port number (got {raw_port!r})") from None
        if not 0 < port < 65536:
            raise ConfigError("NETMON_SMTP_PORT", f"must be 1-65535 (got {port})")
        raw_timeout = env.get("NETMON_SMTP_TIMEOUT", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 30.0
        except ValueError:
            raise ConfigError("NETMON_SMTP_TIMEOUT", f"must be seconds (got {raw_timeout!r})") from None
        mail_from = env.get("NETMON_MAIL_FROM", "").strip() or f"netmon@{socket.getfqdn() or 'localhost'}"
        return cls(
            host=env.get("NETMON_SMTP_HOST", "").strip() or "localhost",
            port=port,
            user=env.get("NETMON_SMTP_USER", "").strip() or None,
            password=env.get("NETMON_SMTP_PASSWORD") or None,
            tls=tls,
            mail_from=mail_from,
            timeout=timeout,
            cafile=env.get("NETMON_SMTP_CAFILE", "").strip() or None,
        )

    @property
    def domain(self) -> str:
        return self.mail_from.rsplit("@", 1)[-1].strip("> ") or "netmon"

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context, made once per CA file: loading the system CA store takes a noticeable
        fraction of a second, too long to repeat on an event loop for every connection."""
        if self.tls == "none":
            return None
        return _tls_context(self.cafile)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiosmtplib.SMTP``."""
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "use_tls": self.tls == "ssl",
            "start_tls": self.tls == "starttls",
        }
        kwargs["local_hostname"] = _local_hostname()  # aiosmtplib would otherwise look it up on the loop
        context = self.tls_context()
        if context is not None:
            kwargs["tls_context"] = context
        if self.user:
            kwargs["username"] = self.user
            kwargs["password"] = self.password or ""
        return kwargs


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    """This host's name for EHLO (a DNS look-up: done once, and off the event loop by the sender)."""
    return socket.getfqdn() or "localhost"


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def mark_matches(text: str | None) -> Markup:
    """Escape hostile captured text, then show the ``[[match]]`` markers as ``<mark>``."""
    escaped = str(escape(text or ""))
    return Markup(_MARKED.sub(lambda m: f"<mark>{m.group(1)}</mark>", escaped))  # noqa: S704 - escaped above


def local_time(value: datetime | None, tz: ZoneInfo = LONDON) -> str:
    if value is None:
        return ""
    return value.astimezone(tz).strftime("%a %d %b %Y %H:%M:%S %Z")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=Undefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["mark"] = mark_matches
    env.filters["local"] = local_time
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def message_id(key: str, domain: str) -> str:
    """A stable Message-ID for an alert key: a retry re-sends the same id, so duplicates are visible."""
    safe = re.sub(r"[^A-Za-z0-9.-]", "", domain) or "netmon"
    return f"<netmon-{key}@{safe}>"


def build_message(
    *,
    subject: str,
    sender: str,
    recipients: tuple[str, ...] | list[str],
    text: str,
    html: str,
    msg_id: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> EmailMessage:
    """A multipart message: plain text, HTML alternative, optional attachments (name, mime type, bytes)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = msg_id or make_msgid(domain=sender.rsplit("@", 1)[-1])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for filename, mime, data in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message
