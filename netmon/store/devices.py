"""Enrolled devices: school-owned laptops and tablets that keep a WireGuard tunnel to the gateway.

One row per device. The private key is never stored (it is shown once, at enrolment or rotation); the
public key and the fixed tunnel address identify the device at the gateway and in the proxy. A revoked
device keeps its row (who had which address when stays answerable for old incidents); only devices not
revoked hold a name, a key or an address exclusively.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from netmon.store.base import Base, UTCDateTime, utcnow

_ACTIVE = text("revoked_at IS NULL")


def _active_unique(name: str, column: str) -> Index:
    """Unique among devices not revoked (a revoked row keeps its name, key and address for the record)."""
    return Index(name, column, unique=True, sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)


class EnrolledDevice(Base):
    """A WireGuard peer issued to one user; its tunnel address names the user off site."""

    __tablename__ = "enrolled_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(150), index=True)
    site: Mapped[str] = mapped_column(String(100), default="")
    public_key: Mapped[str] = mapped_column(String(44))  # base64 of 32 bytes
    address_v4: Mapped[str] = mapped_column(String(15))
    address_v6: Mapped[str | None] = mapped_column(String(45))
    aup_version: Mapped[str] = mapped_column(String(50))
    aup_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)  # latest handshake the gateway saw
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        _active_unique("uq_enrolled_devices_active_name", "name"),
        _active_unique("uq_enrolled_devices_active_key", "public_key"),
        _active_unique("uq_enrolled_devices_active_v4", "address_v4"),
    )
