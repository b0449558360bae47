"""The alert outbox: one row per (rule, incident) that fired, written in the incident's transaction.

``state`` is ``pending`` until the sender delivers it (``sent``), or ``suppressed`` when a rule's cool-down
folded it into an earlier alert (``parent_id``). A pending row is claimed by one sender at a time
(``claimed_by`` plus ``next_attempt`` as the lease) so that two senders never send the same alert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from netmon.store.base import Base, UTCDateTime, utcnow

PENDING = "pending"
SENT = "sent"
SUPPRESSED = "suppressed"


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # stable: the Message-ID is built from it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    rule: Mapped[str] = mapped_column(String(100))
    urgency: Mapped[str] = mapped_column(String(10))  # immediate | digest
    state: Mapped[str] = mapped_column(String(12), default=PENDING, index=True)
    incident_uid: Mapped[str] = mapped_column(String(32), index=True)
    pupil: Mapped[str] = mapped_column(String(150), index=True)  # user, or the client address
    site: Mapped[str] = mapped_column(String(100), default="")
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text, default="")  # why the rule fired, for the email
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        UniqueConstraint("rule", "incident_uid", name="uq_alerts_rule_incident"),
        Index("ix_alerts_due", "state", "next_attempt"),
        Index("ix_alerts_cooldown", "rule", "pupil", "created_at"),
    )
