"""The dashboard's figures: incidents per week by category and by year group, open versus closed, and the
time from first seen to first review, over the last weeks. One computation for the console's dashboard
page and ``netmon report`` (which prints them), so both show the same numbers for the same store.

Incidents are counted as rows, as the report counts them. ``scope`` (a pastoral lead's year groups or
groups) and ``site`` (a school of the trust; None or "" for the whole trust) limit what is counted.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
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
    index = {w: n for n, w in enumerate(starts)}
    where = queries.incident_conditions(queries.QueueFilter(since=starts[0], scope=scope, site=site or None))
    stmt = (
        select(Incident.time, Incident.category, Incident.year_group, Incident.groups,
               IncidentReview.status, IncidentReview.first_reviewed_at)
        .outerjoin(IncidentReview, IncidentReview.incident_id == Incident.id)
        .where(*where)
        .execution_options(yield_per=2000)
    )  # fmt: skip
    categories: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    years: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
    status: Counter[str] = Counter({NEW: 0, IN_REVIEW: 0, CLOSED: 0})
    hours: list[float] = []
    total = 0
    for t, category, year, groups, st, reviewed in db.execute(stmt):
        n = index.get(week_start(t))
        if n is None or not queries.in_scope(scope, year, groups):
            continue
        total += 1
        categories[category][n] += 1
        years[year or "unknown"][n] += 1
        status[st or NEW] += 1
        if reviewed is not None:
            hours.append(max(0.0, (reviewed - t).total_seconds() / 3600))
    return Figures(
        starts, _top(categories, weeks), dict(sorted(years.items())), dict(status), tuple(hours), total,
        site or "",
    )  # fmt: skip


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
