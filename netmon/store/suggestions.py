"""Tables of the library's learning from the DSL: suggested overlay changes and reported misses.

A ``library_suggestions`` row is a change to the school's overlay proposed from a false alarm (an
exception phrase for a library phrase, or its removal): ``pending`` until a network admin (or the DSL)
approves it (written to the overlay) or rejects it, with a reason either way. Its ``host`` is where the
false alarm fired, its ``scope`` where the change applies: "" everywhere, else a host-scoped overlay
line's scope (``HOST`` or ``HOST/PATH``, docs/library-format.md). A ``reported_misses`` row
is text the monitor should have caught, kept as a local evaluation set for ``netmon library eval``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from netmon.store.base import Base, UTCDateTime, utcnow

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
SUGGESTION_STATUSES = (PENDING, APPROVED, REJECTED)
EXCEPTION, REMOVAL = "exception", "removal"
SUGGESTION_KINDS = (EXCEPTION, REMOVAL)


class LibrarySuggestion(Base):
    """A suggested overlay change: an exception phrase (``unless:``) for a library phrase, or its removal."""

    __tablename__ = "library_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(150))
    incident_uid: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # exception | removal
    category: Mapped[str] = mapped_column(String(50))
    language: Mapped[str] = mapped_column(String(20))
    phrase: Mapped[str] = mapped_column(String(300))  # the library phrase as written
    severity: Mapped[int] = mapped_column(Integer)
    library_file: Mapped[str] = mapped_column(String(300))  # where the phrase was defined, and its line
    line: Mapped[int] = mapped_column(Integer, default=0)
    exception: Mapped[str] = mapped_column(Text, default="")  # the exception phrase ("" for a removal)
    host: Mapped[str] = mapped_column(String(255), default="")  # where the false alarm fired
    scope: Mapped[str] = mapped_column(String(255), default="", server_default="")  # "": everywhere
    reason: Mapped[str] = mapped_column(Text, default="")  # why, from whoever suggested it
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(150))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    overlay_file: Mapped[str] = mapped_column(String(500), default="")  # the file an approval wrote

    __table_args__ = (Index("ix_library_suggestions_status", "status", "id"),)


class ReportedMiss(Base):
    """Text the monitor should have caught, with the category and severity it should have had."""

    __tablename__ = "reported_misses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(150))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(50))
    min_severity: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(Text, default="")
