"""The dashboard's figures: incidents per week by category and by year group, open versus closed, and the
time from first seen to first review, over the last weeks. One computation for the console's dashboard
page and ``netmon report`` (which prints them), so both show the same numbers for the same store.

Incidents are counted as rows, as the report counts them, by SQL aggregation (GROUP BY week, category,
year group and status; the weeks are a CASE over Monday boundaries computed here, so SQLite and PostgreSQL
bucket alike); only the reviewed incidents' two times are read, for the time to first review. ``scope``
(a pastoral lead's year groups or groups) and ``site`` (a school of the trust; None or "" for the whole
trust) limit what is counted.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from netmon.incidents import queries
from netmon.store.console import CLOSED, IN_REVIEW, NEW, IncidentReview
from netmon.store.incidents import Incident

TOP = 8  # categories shown by name; the rest are summed as "other"
DEFAULT_WEEKS = 8
MAX_WEEKS = 52


@dataclass(frozen=True, slots=True)
class Figures:
    weeks: tuple[datetime, ...]  # Monday 00:00 UTC of each week, oldest first
    by_category: dict[str, list[int]]  # category -> count per week (top categories, then "other")
    by_year: dict[str, list[int]]  # year group -> count per week
    status: dict[str, int]  # new / in_review / closed over the period
    review_hours: tuple[float, ...]  # first seen -> first review, of the period's reviewed incidents
    total: int
    site: str = ""  # "": the whole trust

    @property
    def median_review_hours(self) -> float | None:
        return statistics.median(self.review_hours) if self.review_hours else None

    @property
    def unreviewed(self) -> int:
        return self.status.get(NEW, 0)

    @property
    def open(self) -> int:
        return self.status.get(NEW, 0) + self.status.get(IN_REVIEW, 0)


def week_start(t: datetime) -> datetime:
    day = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def figures(
    db: Session,
    scope: tuple[str, ...] | None,
    weeks: int,
    now: datetime | None = None,
    site: str | None = None,
) -> Figures:
    """The figures of the last ``weeks`` weeks (this week last) of what ``scope`` and ``site`` may see."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be 1-{MAX_WEEKS} (got {weeks})")
    now = now or datetime.now(UTC)
    starts = tuple(week_start(now) - timedelta(weeks=n) for n in range(weeks - 1, -1, -1))
    end = starts[-1] + timedelta(weeks=1)
    f = queries.QueueFilter(since=starts[0], until=end, scope=scope, site=site or None)
    where = queries.incident_conditions(f)
    # The week of each incident as a CASE over boundaries computed here (Mondays 00:00 UTC): the same
    # buckets on every backend, with no dialect's date functions.
    bounds = [(Incident.time < s, n) for n, s in enumerate(starts[1:])]
    week = (case(*bounds, else_=weeks - 1) if bounds else literal(0)).label("week")
    status_col = func.coalesce(IncidentReview.status, NEW).label("status")
    counted = (
        select(week, Incident.category, Incident.year_group, status_col, func.count().label("n"))
        .select_from(Incident)
        .outerjoin(IncidentReview, IncidentReview.incident_id == Incident.id)
        .where(*where)
        .group_by(week, Incident.category, Incident.year_group, status_col)
    )  # fmt: skip
    categories: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    years: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    status: Counter[str] = Counter({NEW: 0, IN_REVIEW: 0, CLOSED: 0})
    total = 0
    for n, category, year, st, count in db.execute(counted):
        total += count
        categories[category][n] += count
        years[year or "unknown"][n] += count
        status[st] += count
    reviewed = (
        select(Incident.time, IncidentReview.first_reviewed_at)
        .join(IncidentReview, IncidentReview.incident_id == Incident.id)
        .where(*where, IncidentReview.first_reviewed_at.is_not(None))
    )  # fmt: skip
    hours = tuple(max(0.0, (r - t).total_seconds() / 3600) for t, r in db.execute(reviewed) if r is not None)
    return Figures(
        starts, _top(categories, weeks), dict(sorted(years.items())), dict(status), hours, total, site or ""
    )


def _top(rows: dict[str, list[int]], weeks: int) -> dict[str, list[int]]:
    ranked = sorted(rows.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    top = dict(ranked[:TOP])
    if len(ranked) > TOP:
        top["other"] = [sum(v[n] for _, v in ranked[TOP:]) for n in range(weeks)]
    return top


def render_text(f: Figures) -> str:
    """The figures as plain text tables (``netmon report``): the same numbers as the console's page."""
    where = f"site {f.site}" if f.site else "the whole trust"
    lines = [
        f"Dashboard, last {len(f.weeks)} week{'s' if len(f.weeks) != 1 else ''} "
        f"(weeks from {f.weeks[0]:%Y-%m-%d}, Mondays UTC), {where}",
        f"  incidents {f.total}: new {f.status.get(NEW, 0)}, in review {f.status.get(IN_REVIEW, 0)}, "
        f"closed {f.status.get(CLOSED, 0)} (open {f.open})",
    ]
    median = f.median_review_hours
    lines.append(
        f"  time to first review (median): {median:.1f} hours over {len(f.review_hours)} reviewed"
        if median is not None
        else "  time to first review (median): none reviewed yet"
    )
    header = " ".join(f"{w:%d %b}".rjust(6) for w in f.weeks)
    for title, rows in (("by category", f.by_category), ("by year group", f.by_year)):
        lines.append(f"  Incidents per week {title}:")
        lines.append(f"    {'':20} {header} {'total':>6}")
        if not rows:
            lines.append("    (no incidents)")
        for name, counts in rows.items():
            cells = " ".join(f"{c:6d}" for c in counts)
            lines.append(f"    {name[:20]:20} {cells} {sum(counts):6d}")
    return "\n".join(lines)
