"""The dashboard page: incidents per week by category and by year group, open versus closed, and the time
to first review, over the last weeks; drawn as inline SVG bars (no script, nothing fetched: the page CSP
holds). The figures come from ``netmon.incidents.dashboard``, the same computation ``netmon report``
prints. A pastoral lead sees their scope only, a member of staff of one site that site only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request
from netmon_console.auth import record, require, state
from sqlalchemy.orm import Session

from netmon.incidents.dashboard import DEFAULT_WEEKS, MAX_WEEKS, Figures, figures, week_start

__all__ = ["Figures", "bp", "figures", "week_start"]

bp = Blueprint("dashboard", __name__)


@bp.route("/dashboard")
@require("incidents")
def dashboard() -> Any:
    raw = request.args.get("weeks", str(DEFAULT_WEEKS))
    weeks = int(raw) if raw.isdigit() and 1 <= int(raw) <= MAX_WEEKS else DEFAULT_WEEKS
    with Session(state().engine) as db, db.begin():
        figs = figures(db, g.staff.scope, weeks, site=g.staff.site or None)
        record(db, "console.dashboard.view", None, weeks=weeks)
    peak = max([1, *(c for row in (*figs.by_category.values(), *figs.by_year.values()) for c in row)])
    return render_template("dashboard.html", f=figs, weeks=weeks, peak=peak)
