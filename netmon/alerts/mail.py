"""Rendering of e-mails from jinja2 templates (autoescaped) and building the messages.

The SMTP settings are read from the environment by :class:`netmon.config.settings.SmtpSettings`
(re-exported here for callers of the old name).
"""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from markupsafe import Markup, escape

from netmon.config.settings import TLS_MODES, SmtpSettings
from netmon.safe_text import neutralise

__all__ = ["LONDON", "TLS_MODES", "SmtpSettings", "build_message", "message_id", "render"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
_MARKED = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
LONDON = ZoneInfo("Europe/London")


def mark_matches(text: str | None) -> Markup:
    """Escape hostile captured text, then show the ``[[match]]`` markers as ``<mark>``."""
    escaped = str(escape(neutralise(text or "")))
    return Markup(_MARKED.sub(lambda m: f"<mark>{m.group(1)}</mark>", escaped))  # noqa: S704 - escaped above


def local_time(value: datetime | None, tz: ZoneInfo = LONDON) -> str:
    if value is None:
        return ""
    return value.astimezone(tz).strftime("%a %d %b %Y %H:%M:%S %Z")


def _inert(value: Any) -> Any:
    if isinstance(value, Markup):
        return value  # built by a filter from text it neutralised and escaped already
    return neutralise(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=Undefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_inert,  # every value shown: no terminal escapes, controls or bidi tricks in mail text
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
