"""Incident and audit tables: what was seen, by whom, where, and why it fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from netmon.store.base import Base, UTCDateTime, utcnow
from netmon.store.db import SITE_OPTION


class Incident(Base):
    """One recorded incident. A page with many matches is one row; repeats within the de-duplication
    window (same user or address + URL + top phrase) raise ``count`` and ``last_seen``."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # public id for `netmon` look-ups and alerts
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # first seen, aware UTC
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    site: Mapped[str] = mapped_column(String(100), default="")
    client_ip: Mapped[str] = mapped_column(String(45), index=True)
    mac: Mapped[str | None] = mapped_column(String(17))
    user: Mapped[str | None] = mapped_column(String(150), index=True)
    role: Mapped[str | None] = mapped_column(String(20))
    year_group: Mapped[str | None] = mapped_column(String(20))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    device: Mapped[str | None] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255), index=True)
    url: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # search|page|form|chat|websocket|image|url-list|sni
    category: Mapped[str] = mapped_column(String(50), index=True)  # category of the top hit
    severity: Mapped[int] = mapped_column(Integer, index=True)  # highest severity among the hits
    phrase: Mapped[str] = mapped_column(String(300))  # the top phrase
    # every hit: [{"phrase", "category", "severity"}], highest severity first
    phrases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    excerpt: Mapped[str] = mapped_column(Text, default="")  # original text around the match, match in [[ ]]
    # why it fired: [{"phrase", "category", "severity", "language", "library_file", "line",
    #                 "matched_text", "steps": [...], "rules": [...]}]
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # non-text evidence, e.g. for images: {"sha256": ..., "phash": ..., "bytes": n, "list": ...}
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedup_key: Mapped[str] = mapped_column(String(64), index=True)
    capture_text: Mapped[str] = mapped_column(Text, default="")  # extracted text the pupil saw (capped)
    snapshot: Mapped[bytes | None] = mapped_column(LargeBinary)  # sanitised, compressed bytes received
    snapshot_type: Mapped[str | None] = mapped_column(String(100))  # media type before compression
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_incidents_dedup", "dedup_key", "last_seen"),)

    # Not columns: set by netmon.incidents.writer.IncidentWriter on the incidents it hands to ``after_batch``
    # callables: created by this batch, and how many results this batch merged into it.
    batch_new = False
    batch_repeats = 0


class IncidentMerge(Base):
    """A scan result merged into an existing incident (``count`` + 1), by the id it was given when it was
    submitted: a batch replayed after a lost commit acknowledgement skips it (migration 0016b). A result
    that created an incident needs no row: the incident's uid is the result's id."""

    __tablename__ = "incident_merges"

    rid: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_uid: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # when it was merged


class AuditEvent(Base):
    """Append-only audit trail shared by every feature (sign-ins, alerts, exports, list changes...)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)  # e.g. "portal.signin.failed", "alert.sent"
    actor: Mapped[str | None] = mapped_column(String(150))  # user, "system", or an address
    subject: Mapped[str | None] = mapped_column(String(255))  # e.g. an incident uid, an alert id
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # never page content or passwords
    site: Mapped[str] = mapped_column(String(100), default="", server_default="")

    __table_args__ = (Index("ix_audit_events_site_time", "site", "time"),)


def audit(
    session: Any,
    action: str,
    *,
    actor: str | None = None,
    subject: str | None = None,
    site: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to ``session`` (the caller commits).

    ``site`` is the school the event belongs to ("" for the whole trust). Left out (None), the row gets
    the site of the engine it is written through (``make_engine(site=...)``, by default ``NETMON_SITE``):
    a gateway's own audit rows carry its site without each caller naming it."""
    row = AuditEvent(action=action, actor=actor, subject=subject, detail=detail, time=utcnow())
    if site is not None:
        row.site = site[:100]
    session.add(row)
    return row


@event.listens_for(AuditEvent, "before_insert")
def _stamp_site(mapper: Any, connection: Any, target: AuditEvent) -> None:
    if target.site is None:
        target.site = str(connection.get_execution_options().get(SITE_OPTION, ""))
