"""The dashboard: incidents per week by category and by year group, open versus closed, and the time to
first review, over the last weeks; drawn as inline SVG bars (no script, nothing fetched: the page CSP
holds). A pastoral lead sees their scope only. Figures are counted per incident row, as `netmon report`
counts them."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, g, render_template, request
from netmon_console.auth import record, require, state
from sqlalchemy import select
from sqlalchemy.orm import Session

from netmon.incidents import queries
from netmon.store.console import CLOSED, IN_REVIEW, NEW, IncidentReview
from netmon.store.incidents import Incident

bp = Blueprint("dashboard", __name__)
TOP = 8


@dataclass(frozen=True, slots=True)
class Figures:
    weeks: tuple[datetime, ...]  # Monday 00:00 UTC of each week, oldest first
    by_category: dict[str, list[int]]  # category -> count per week (top categories, then "other")
    by_year: dict[str, list[int]]  # year group -> count per week
    status: dict[str, int]  # new / in_review / closed over the period
    review_hours: tuple[float, ...]  # first seen -> first review, of the period's reviewed incidents
    total: int

    @property
    def median_review_hours(self) -> float | None:
        return statistics.median(self.review_hours) if self.review_hours else None

    @property
    def unreviewed(self) -> int:
        return self.status.get(NEW, 0)


def week_start(t: datetime) -> datetime:
    day = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def figures(db: Session, scope: tuple[str, ...] | None, weeks: int, now: datetime | None = None) -> Figures:
    now = now or datetime.now(UTC)
    starts = tuple(week_start(now) - timedelta(weeks=n) for n in range(weeks - 1, -1, -1))
    index = {w: n for n, w in enumerate(starts)}
    where = queries.incident_conditions(queries.QueueFilter(since=starts[0], scope=scope))
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
        starts, _top(categories, weeks), dict(sorted(years.items())), dict(status), tuple(hours), total
    )


def _top(rows: dict[str, list[int]], weeks: int) -> dict[str, list[int]]:
    ranked = sorted(rows.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    top = dict(ranked[:TOP])
    if len(ranked) > TOP:
        top["other"] = [sum(v[n] for _, v in ranked[TOP:]) for n in range(weeks)]
    return top


@bp.route("/dashboard")
@require("incidents")
def dashboard() -> Any:
    raw = request.args.get("weeks", "8")
    weeks = int(raw) if raw.isdigit() and 1 <= int(raw) <= 52 else 8
    with Session(state().engine) as db, db.begin():
        figs = figures(db, g.staff.scope, weeks)
        record(db, "console.dashboard.view", None, weeks=weeks)
    peak = max([1, *(c for row in (*figs.by_category.values(), *figs.by_year.values()) for c in row)])
    return render_template("dashboard.html", f=figs, weeks=weeks, peak=peak)
