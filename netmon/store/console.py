"""Staff console tables: staff accounts (roles, argon2 password, TOTP), incident reviews and their history.

An incident with no ``incident_reviews`` row is ``new``. Every change to a review (status, outcome,
assignment, a note) adds one ``incident_changes`` row: the history is never rewritten. Views, exports and
account changes go to the shared ``audit_events`` table (``netmon.store.incidents.audit``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from netmon.store.base import Base, UTCDateTime, utcnow
from netmon.store.incidents import Incident

#: Staff roles. dsl: everything; deputy_dsl: incidents, content and outcomes; pastoral: the same, for the
#: year groups or groups in their scope only; network_admin: incident metadata, no captured content;
#: auditor: the audit log only.
ROLES = ("dsl", "deputy_dsl", "pastoral", "network_admin", "auditor")
#: Roles that see what pupils sent or saw: they must sign in with a TOTP second factor.
CONTENT_ROLES = ("dsl", "deputy_dsl", "pastoral")
#: ``password_hash`` of an account whose password the school directory checks (an LDAP bind): not an
#: argon2 hash, so no local password ever matches it.
DIRECTORY_PASSWORD = "!directory"  # noqa: S105 - a marker, not a password

NEW, IN_REVIEW, CLOSED = "new", "in_review", "closed"
STATUSES = (NEW, IN_REVIEW, CLOSED)
OUTCOMES = (
    "false_alarm",
    "no_concern",
    "concern_logged",
    "referred_dsl",
    "referred_police",
    "referred_social_care",
    "referred_prevent",
    "referred_ceop",
    "other",
)


class StaffAccount(Base):
    """A member of staff who may sign in to the console."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)  # stored lower-case
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[list[str]] = mapped_column(JSON, default=list)  # year groups or groups (pastoral)
    site: Mapped[str] = mapped_column(String(100), default="", server_default="")  # "": the whole trust
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2, or DIRECTORY_PASSWORD
    # sealed (netmon.identity.totp: "t1:..."), or plain base32 from before sealing; None: not enrolled
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # a code is accepted once
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_signin_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def uses_directory(self) -> bool:
        return self.password_hash == DIRECTORY_PASSWORD


class IncidentReview(Base):
    """The current state of an incident's review (the latest of its history)."""

    __tablename__ = "incident_reviews"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=NEW)
    outcome: Mapped[str | None] = mapped_column(String(40))
    assignee: Mapped[str | None] = mapped_column(String(150))
    first_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(150), default="")
    site: Mapped[str] = mapped_column(String(100), default="", server_default="")

    __table_args__ = (Index("ix_incident_reviews_status", "status", "incident_id"),)


class IncidentChange(Base):
    """One change to a review: who, when, what (``changes``: field -> [old, new]) and an optional note."""

    __tablename__ = "incident_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(150))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    site: Mapped[str] = mapped_column(String(100), default="", server_default="")


# Triage-queue indexes on the core's incidents table (created by migration 0013): keyset paging of the queue
# (most severe, newest first) and its common filters. Declared here so the models match the migrations.
Index("ix_incidents_queue", Incident.severity, Incident.time, Incident.id)
Index("ix_incidents_category_queue", Incident.category, Incident.severity, Incident.time, Incident.id)
Index("ix_incidents_year_queue", Incident.year_group, Incident.severity, Incident.time, Incident.id)
Index("ix_incidents_user_time", Incident.user, Incident.time)
# A site-scoped member of staff pages their own site (migration 0016).
Index("ix_incidents_site_queue", Incident.site, Incident.severity, Incident.time, Incident.id)
# The group filter and a pastoral lead's scope on PostgreSQL: ``CAST(groups AS JSONB) ?| ARRAY[...]``
# (migration 0013d; SQLite has no such index).
Index("ix_incidents_groups_gin", cast(Incident.groups, JSONB), postgresql_using="gin").ddl_if(
    dialect="postgresql"
)
