"""The incidents read model: the triage queue, counts per status, one incident with its review and history,
a pupil's timeline and filtered export rows. The one place these queries live (the console uses it).

The queue is ordered most severe, newest first, and paged by keyset (``Cursor``: severity, time, id of
the last row shown), so page 2,000 costs what page 1 costs; migration 0013 adds the indexes it walks.
A pastoral lead's ``scope`` (year groups or groups) is applied in SQL for lists and by :func:`in_scope`
for single incidents: both name the same rule. So is a member of staff's ``site`` (a school of a trust
sharing one store; None or "" is the whole trust): ``Incident.site`` in SQL, :func:`in_site` for one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Select, false, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session, defer

from netmon.incidents.export import FIELDS, FORMULA_START, csv_row, record
from netmon.incidents.groups_sql import groups_any
from netmon.store.base import UTCDateTime
from netmon.store.console import CLOSED, IN_REVIEW, NEW, STATUSES, IncidentChange, IncidentReview
from netmon.store.incidents import Incident

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which incidents a view shows; every field is optional. ``scope`` None means no scope limit."""

    statuses: tuple[str, ...] = ()
    min_severity: int | None = None
    category: str | None = None
    pupil: str | None = None
    group: str | None = None
    year_group: str | None = None
    since: datetime | None = None  # first seen, inclusive
    until: datetime | None = None  # first seen, exclusive
    assignee: str | None = None
    scope: tuple[str, ...] | None = None
    site: str | None = None  # None or "": every site of the trust

    def describe(self) -> dict[str, Any]:
        """The filters as plain data for the audit trail."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, ()):
                continue
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after the last row shown: (severity, time, id), in queue order."""

    severity: int
    time: datetime
    id: int

    def encode(self) -> str:
        micros = int(self.time.timestamp() * 1_000_000)
        return f"{self.severity}.{micros}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """A cursor from its text, or None for anything malformed (a bad link shows page one)."""
        try:
            severity, micros, ident = (int(part) for part in (text or "").split("."))
            return cls(severity, datetime.fromtimestamp(micros / 1_000_000, UTC), ident)
        except (ValueError, OverflowError, OSError):
            return None


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    uid: str
    time: datetime
    severity: int
    category: str
    phrase: str
    source: str
    host: str
    user: str | None
    client_ip: str
    year_group: str | None
    groups: tuple[str, ...]
    count: int
    status: str
    outcome: str | None
    assignee: str | None
    site: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    rows: tuple[QueueRow, ...]
    next: Cursor | None = None  # None: this was the last page


@dataclass(frozen=True, slots=True)
class ReviewState:
    status: str = NEW
    outcome: str | None = None
    assignee: str | None = None
    first_reviewed_at: datetime | None = None
    history: tuple[IncidentChange, ...] = field(default_factory=tuple)


def in_scope(scope: Sequence[str] | None, year_group: str | None, groups: Sequence[str] | None) -> bool:
    """True when an incident of a pupil in ``year_group`` / ``groups`` is inside ``scope``."""
    if scope is None:
        return True
    wanted = set(scope)
    return (year_group is not None and year_group in wanted) or bool(wanted & set(groups or ()))


def in_site(site: str | None, incident_site: str | None) -> bool:
    """True when an incident recorded at ``incident_site`` is visible to staff of ``site`` ("": all)."""
    return not site or (incident_site or "") == site


def _has_group(group: str) -> ColumnElement[bool]:
    """``incidents.groups`` (a JSON list) holds ``group``."""
    return groups_any(Incident.groups, [group])


def _scope_clause(scope: tuple[str, ...]) -> ColumnElement[bool]:
    if not scope:
        return false()
    return or_(Incident.year_group.in_(scope), groups_any(Incident.groups, scope))


def _incident_conditions(f: QueueFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.min_severity is not None:
        where.append(Incident.severity >= f.min_severity)
    if f.category:
        where.append(Incident.category == f.category)
    if f.pupil:
        where.append(Incident.user == f.pupil)
    if f.year_group:
        where.append(Incident.year_group == f.year_group)
    if f.group:
        where.append(_has_group(f.group))
    if f.since is not None:
        where.append(Incident.time >= f.since)
    if f.until is not None:
        where.append(Incident.time < f.until)
    if f.scope is not None:
        where.append(_scope_clause(f.scope))
    if f.site:
        where.append(Incident.site == f.site)
    return where


def incident_conditions(f: QueueFilter) -> list[ColumnElement[bool]]:
    """The SQL conditions of ``f``'s incident filters and scope (not its review status or assignee)."""
    return _incident_conditions(f)


def _review_conditions(f: QueueFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.statuses:
        wanted = [s for s in f.statuses if s in STATUSES]
        if NEW in wanted:  # no review row, or one in a wanted status: "not reviewed into another status"
            # (as a subquery on incidents, not a filter after the outer join: PostgreSQL then walks the
            # queue index and stops at the page, instead of joining every row and sorting)
            others = select(IncidentReview.incident_id).where(IncidentReview.status.not_in(wanted))
            where.append(Incident.id.not_in(others))
        else:
            where.append(IncidentReview.status.in_(wanted))
    if f.assignee:
        where.append(IncidentReview.assignee == f.assignee)
    return where


def _queue_select(f: QueueFilter) -> Select[Any]:
    stmt = (
        select(
            Incident.id,
            Incident.uid,
            Incident.time,
            Incident.severity,
            Incident.category,
            Incident.phrase,
            Incident.source,
            Incident.host,
            Incident.user,
            Incident.client_ip,
            Incident.year_group,
            Incident.groups,
            Incident.count,
            Incident.site,
            IncidentReview.status,
            IncidentReview.outcome,
            IncidentReview.assignee,
        )  # fmt: skip
        .select_from(Incident)
        .outerjoin(IncidentReview, IncidentReview.incident_id == Incident.id)
    )
    return stmt.where(*_incident_conditions(f), *_review_conditions(f))  # type: ignore[return-value]


def _row(r: Any) -> QueueRow:
    return QueueRow(
        id=r.id, uid=r.uid, time=r.time, severity=r.severity, category=r.category, phrase=r.phrase,
        source=r.source, host=r.host, user=r.user, client_ip=r.client_ip, year_group=r.year_group,
        groups=tuple(r.groups or ()), count=r.count, status=r.status or NEW, outcome=r.outcome,
        assignee=r.assignee, site=r.site or "",
    )  # fmt: skip


def queue(session: Session, f: QueueFilter, after: Cursor | None = None, limit: int = PAGE_SIZE) -> Page:
    """One page of the triage queue: most severe first, then newest, after ``after``."""
    stmt = _queue_select(f)
    if after is not None:
        stmt = stmt.where(
            tuple_(Incident.severity, Incident.time, Incident.id)
            < tuple_(literal(after.severity), literal(after.time, UTCDateTime()), literal(after.id))
        )
    stmt = stmt.order_by(Incident.severity.desc(), Incident.time.desc(), Incident.id.desc()).limit(limit + 1)
    rows = [_row(r) for r in session.execute(stmt)]
    rows = [r for r in rows if in_scope(f.scope, r.year_group, r.groups) and in_site(f.site, r.site)]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(tuple(rows), Cursor(last.severity, last.time, last.id) if last else None)


def status_counts(session: Session, f: QueueFilter) -> dict[str, int]:
    """How many incidents of the view (its status filter aside) are new, in review and closed."""
    base = replace(f, statuses=())
    incident_where = _incident_conditions(base)
    total = session.scalar(select(func.count(Incident.id)).where(*incident_where)) or 0
    reviewed = select(IncidentReview.status, func.count()).join(
        Incident, Incident.id == IncidentReview.incident_id
    )
    reviewed = reviewed.where(*incident_where, *_review_conditions(base)).group_by(IncidentReview.status)
    counts = {NEW: 0, IN_REVIEW: 0, CLOSED: 0}
    for status, n in session.execute(reviewed):
        counts[status] = counts.get(status, 0) + n
    if base.assignee:  # an unreviewed incident has no assignee
        return counts
    counts[NEW] += total - sum(counts.values())
    return counts


def incident_by_uid(session: Session, uid: str) -> Incident | None:
    return session.scalars(select(Incident).where(Incident.uid == uid)).one_or_none()


def review_state(session: Session, incident_id: int) -> ReviewState:
    review = session.get(IncidentReview, incident_id)
    history = tuple(
        session.scalars(
            select(IncidentChange)
            .where(IncidentChange.incident_id == incident_id)
            .order_by(IncidentChange.time, IncidentChange.id)
        )
    )
    if review is None:
        return ReviewState(history=history)
    return ReviewState(review.status, review.outcome, review.assignee, review.first_reviewed_at, history)


def pupil_timeline(
    session: Session, incident: Incident, limit: int = 20, site: str | None = None
) -> tuple[QueueRow, ...]:
    """The same pupil's other incidents (at ``site`` only, when given), newest first (empty when the
    pupil is unknown)."""
    if not incident.user:
        return ()
    stmt = _queue_select(QueueFilter(pupil=incident.user, site=site)).where(Incident.id != incident.id)
    stmt = stmt.order_by(Incident.time.desc(), Incident.id.desc()).limit(limit)
    return tuple(_row(r) for r in session.execute(stmt))


def export_records(session: Session, f: QueueFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every incident of the view as plain data (``netmon.incidents.export.record`` plus the review), in
    queue order. No capture text or snapshot."""
    stmt = (
        select(Incident, IncidentReview)
        .outerjoin(IncidentReview, IncidentReview.incident_id == Incident.id)
        .options(defer(Incident.capture_text), defer(Incident.snapshot))
        .where(*_incident_conditions(f), *_review_conditions(f))
        .order_by(Incident.severity.desc(), Incident.time.desc(), Incident.id.desc())
        .execution_options(yield_per=batch)
    )
    for incident, review in session.execute(stmt):
        if not in_scope(f.scope, incident.year_group, incident.groups) or not in_site(f.site, incident.site):
            continue
        row = record(incident)
        row["status"] = review.status if review else NEW
        row["outcome"] = review.outcome if review else None
        row["assignee"] = review.assignee if review else None
        yield row


#: CSV columns of an exported view: the incident export's fields, then the review.
CSV_FIELDS = (*FIELDS, "status", "outcome", "assignee")
_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127], "\ufffd")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: control characters replaced, formulas neutralised (also
    behind leading spaces), numbers unchanged."""
    if not isinstance(value, str):
        return "" if value is None else value
    text = value.translate(_CONTROL)
    if text.lstrip(" \t\r\n").startswith(FORMULA_START) or text.startswith(FORMULA_START):
        return "'" + text
    return text


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO, header: bool = True) -> int:
    """The view as CSV (open ``out`` with ``encoding="utf-8-sig", newline=""`` for Excel)."""
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_FIELDS)
    n = 0
    for row in rows:
        flat = dict(zip(FIELDS, csv_row(row), strict=True))
        flat.update(status=row["status"], outcome=row["outcome"], assignee=row["assignee"])
        writer.writerow([spreadsheet_cell(flat[name]) for name in CSV_FIELDS])
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class Flag:
    """A pattern in the pupil's timeline worth the reviewer's attention (``kind``: repetition, escalation)."""

    kind: str
    text: str


REPEAT_COUNT = 3
REPEAT_WINDOW = timedelta(days=7)
RISING_WINDOW = timedelta(days=30)


def pupil_flags(session: Session, incident: Incident, site: str | None = None) -> tuple[Flag, ...]:
    """Repetition (the pupil's 3rd or later incident of this category within 7 days, up to this one) and
    escalation (severity rising over the pupil's last three incidents within 30 days, ending at this one);
    counting the incidents of ``site`` only, when given."""
    if not incident.user:
        return ()
    since = incident.time - max(REPEAT_WINDOW, RISING_WINDOW)
    where = [Incident.user == incident.user, Incident.time >= since, Incident.time <= incident.time]
    if site:
        where.append(Incident.site == site)
    found = session.execute(
        select(Incident.id, Incident.time, Incident.category, Incident.severity)
        .where(*where)
        .order_by(Incident.time, Incident.id)
        .limit(500)
    ).all()
    rows: list[Any] = [r for r in found if r.id != incident.id] + [incident]  # this incident last
    flags: list[Flag] = []
    same = [r for r in rows if r.category == incident.category and r.time >= incident.time - REPEAT_WINDOW]
    if len(same) >= REPEAT_COUNT:
        flags.append(
            Flag("repetition", f"{_ordinal(len(same))} {incident.category} incident for this pupil in 7 days")
        )
    recent = [r for r in rows if r.time >= incident.time - RISING_WINDOW][-3:]
    levels = [int(r.severity) for r in recent]
    if len(levels) == 3 and levels == sorted(levels) and levels[-1] > levels[0]:
        flags.append(
            Flag("escalation", "severity rising: " + " → ".join(map(str, levels)) + " (last 30 days)")
        )
    return tuple(flags)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
