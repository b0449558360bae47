"""Identity tables: roster accounts, device sessions, AUP acceptances and the portal's shared settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from netmon.store.base import Base, UTCDateTime, utcnow


class UserAccount(Base):
    """A pupil or member of staff, from the roster CSV or first seen at a directory (LDAP) sign-in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)  # stored lower-case
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="pupil")  # pupil | staff
    year_group: Mapped[str | None] = mapped_column(String(20))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2; None: directory sign-in only
    source: Mapped[str] = mapped_column(String(20), default="roster")  # roster | directory
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeviceSession(Base):
    """One device signed in at one address: IP (+ MAC when the gateway sees it) -> user.

    Identity fields are copied at sign-in so the proxy's snapshot needs no join. A session is live while
    ``ended_at`` is empty, ``last_seen + idle_seconds`` and ``expires_at`` are in the future and its
    ``aup_version`` is the current AUP version.
    """

    __tablename__ = "device_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    year_group: Mapped[str | None] = mapped_column(String(20))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    ip: Mapped[str] = mapped_column(String(45), index=True)
    mac: Mapped[str | None] = mapped_column(String(17))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    aup_version: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idle_seconds: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(40))  # signed-out | replaced | ended-by-admin ...
    site: Mapped[str] = mapped_column(String(100), default="", server_default="")

    __table_args__ = (Index("ix_device_sessions_open", "ended_at", "ip"),)


class AupAcceptance(Base):
    """A record that a user accepted a version of the Acceptable Use Policy on a device."""

    __tablename__ = "aup_acceptances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(150), index=True)
    aup_version: Mapped[str] = mapped_column(String(50))
    language: Mapped[str] = mapped_column(String(10))
    ip: Mapped[str] = mapped_column(String(45))
    mac: Mapped[str | None] = mapped_column(String(17))
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class PortalSetting(Base):
    """Small shared values between the portal and the proxy (current AUP version, link-signing key)."""

    __tablename__ = "portal_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
