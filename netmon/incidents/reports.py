"""Safeguarding reports over a period: figures, HTML (plain HTML/CSS bars for every mail client), text and
CSV, and delivery by e-mail.

The period ends at ``until`` (default: now) and lasts one day, seven days or thirty days; the previous
period of the same length gives the trend. Incidents are counted as rows (a page seen again within the
de-duplication window is one incident). ``site`` limits a report to one school of a trust sharing the
store (None: every site). The dashboard's figures (per week, open versus closed, time to first review)
are ``netmon.incidents.dashboard``, which ``netmon report`` prints after these.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from netmon.alerts.mail import LONDON, SmtpSettings, build_message, render
from netmon.store.alerts import Alert
from netmon.store.base import utcnow
from netmon.store.incidents import Incident

log = logging.getLogger(__name__)

PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=30)}
HIGH_RISK_SEVERITY = 4
HIGH_RISK_COUNT = 5
TOP = 10


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a table: a name, this period's count, the previous period's count, extra columns."""

    name: str
    count: int
    previous: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def change(self) -> int:
        return self.count - self.previous


@dataclass(frozen=True, slots=True)
class Report:
    period: str
    start: datetime
    end: datetime
    previous_start: datetime
    total: int
    previous_total: int
    by_severity: tuple[Row, ...]
    by_category: tuple[Row, ...]
    top_users: tuple[Row, ...]
    top_phrases: tuple[Row, ...]
    high_risk: tuple[Row, ...]
    new_pupils: tuple[str, ...]
    repeat_pupils: tuple[str, ...]
    alerts_sent: int = 0
    alerts_pending: int = 0
    tz: ZoneInfo = LONDON
    site: str = ""  # "": every site

    @property
    def trend(self) -> str:
        return trend_text(self.total, self.previous_total)

    @property
    def title(self) -> str:
        fmt = "%d %b %Y %H:%M"
        where = f" for site {self.site}" if self.site else ""
        return (
            f"netmon {self.period} safeguarding report{where}, {self.start.astimezone(self.tz).strftime(fmt)}"
            f" to {self.end.astimezone(self.tz).strftime(fmt)}"
        )


def trend_text(now: int, before: int) -> str:
    if before == 0:
        return "new" if now else "no change"
    change = (now - before) * 100 / before
    if change == 0:
        return "no change"
    return f"{'up' if change > 0 else 'down'} {abs(change):.0f}%"


def pupil_label(user: str | None, client_ip: str) -> str:
    return user if user else f"{client_ip} (not signed in)"


def _rows(now: Counter[Any], before: Counter[Any], keys: Iterable[Any] | None = None) -> tuple[Row, ...]:
    names = (
        list(keys)
        if keys is not None
        else sorted(set(now) | set(before), key=lambda k: (-now[k], -before[k], str(k)))
    )
    return tuple(Row(str(k), now[k], before[k]) for k in names)


def build_report(
    engine: Engine,
    period: str,
    *,
    until: datetime | None = None,
    tz: ZoneInfo = LONDON,
    watch_list: frozenset[str] = frozenset(),
    site: str | None = None,
) -> Report:
    """Compute the figures for ``period`` (daily, weekly, monthly) ending at ``until`` (default now).

    ``watch_list``: users the school already treats as high-risk (the policy's ``high-risk`` group); any
    incident of theirs puts them in the high-risk table. ``site``: one school's incidents and alerts only.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)} (got {period!r})")
    end = until or utcnow()
    start = end - PERIODS[period]
    previous_start = start - PERIODS[period]
    columns = (
        Incident.time,
        Incident.user,
        Incident.client_ip,
        Incident.category,
        Incident.severity,
        Incident.phrase,
    )
    at_site = [Incident.site == site] if site else []
    alert_site = [Alert.site == site] if site else []
    with Session(engine) as session:
        rows = session.execute(
            select(*columns).where(Incident.time >= previous_start, Incident.time < end, *at_site)
        ).all()
        current = [r for r in rows if r.time >= start]
        previous = [r for r in rows if r.time < start]
        pupils = {(r.user, r.client_ip if not r.user else "") for r in current}
        seen_before = _seen_before(session, pupils, start, site)
        sent = select(func.count(Alert.id)).where(Alert.sent_at >= start, Alert.sent_at < end, *alert_site)
        alerts_sent = session.scalar(sent) or 0
        pending = select(func.count(Alert.id)).where(Alert.state == "pending", *alert_site)
        alerts_pending = session.scalar(pending) or 0
    sev_now = Counter(r.severity for r in current)
    sev_before = Counter(r.severity for r in previous)
    cat_now = Counter(r.category for r in current)
    cat_before = Counter(r.category for r in previous)
    by_pupil: dict[str, list[Any]] = defaultdict(list)
    by_pupil_before: Counter[str] = Counter()
    for r in current:
        by_pupil[pupil_label(r.user, r.client_ip)].append(r)
    for r in previous:
        by_pupil_before[pupil_label(r.user, r.client_ip)] += 1
    top_users = tuple(
        Row(
            name,
            len(items),
            by_pupil_before[name],
            {
                "max_severity": max(i.severity for i in items),
                "categories": ", ".join(c for c, _ in Counter(i.category for i in items).most_common(3)),
            },
        )
        for name, items in sorted(
            by_pupil.items(), key=lambda kv: (-len(kv[1]), -max(i.severity for i in kv[1]), kv[0])
        )[:TOP]
    )
    phrase_now = Counter((r.phrase, r.category) for r in current)
    phrase_before = Counter((r.phrase, r.category) for r in previous)
    top_phrases = tuple(
        Row(phrase, n, phrase_before[(phrase, cat)], {"category": cat})
        for (phrase, cat), n in sorted(phrase_now.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    )
    high_risk: list[Row] = []
    for name, items in by_pupil.items():
        top = max(i.severity for i in items)
        reasons = []
        if top >= HIGH_RISK_SEVERITY:
            reasons.append(f"severity {top} incident")
        if len(items) >= HIGH_RISK_COUNT:
            reasons.append(f"{len(items)} incidents")
        if name.casefold() in watch_list:
            reasons.append("on the high-risk list")
        if reasons:
            high_risk.append(
                Row(
                    name,
                    len(items),
                    by_pupil_before[name],
                    {
                        "max_severity": top,
                        "why": " and ".join(reasons),
                        "categories": ", ".join(
                            sorted({i.category for i in items if i.severity >= min(top, 3)})
                        ),
                    },
                )
            )
    high_risk.sort(key=lambda r: (-r.extra["max_severity"], -r.count, r.name))
    new: list[str] = []
    repeat: list[str] = []
    for user, ip in sorted(pupils, key=lambda p: (p[0] or "", p[1])):
        label = pupil_label(user, ip)
        (repeat if (user, ip) in seen_before else new).append(label)
    return Report(
        period=period,
        start=start,
        end=end,
        previous_start=previous_start,
        total=len(current),
        previous_total=len(previous),
        by_severity=_rows(sev_now, sev_before, range(5, 0, -1)),
        by_category=_rows(cat_now, cat_before),
        top_users=top_users,
        top_phrases=top_phrases,
        high_risk=tuple(high_risk),
        new_pupils=tuple(new),
        repeat_pupils=tuple(repeat),
        alerts_sent=alerts_sent,
        alerts_pending=alerts_pending,
        tz=tz,
        site=site or "",
    )


def _seen_before(
    session: Session, pupils: set[tuple[str | None, str]], start: datetime, site: str | None = None
) -> set[tuple[str | None, str]]:
    users = sorted(u for u, _ in pupils if u)
    ips = sorted(ip for u, ip in pupils if not u)
    seen: set[tuple[str | None, str]] = set()
    at_site = [Incident.site == site] if site else []
    for chunk in _chunks(users, 500):
        for (user,) in session.execute(
            select(Incident.user).where(Incident.user.in_(chunk), Incident.time < start, *at_site).distinct()
        ):
            seen.add((user, ""))
    for chunk in _chunks(ips, 500):
        query = select(Incident.client_ip).where(
            Incident.client_ip.in_(chunk),
            Incident.time < start,
            or_(Incident.user.is_(None), Incident.user == ""),
            *at_site,
        )
        for (ip,) in session.execute(query.distinct()):
            seen.add((None, ip))
    return seen


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(report: Report) -> str:
    """The figures as CSV (section, name, count, previous, detail); spreadsheet-formula safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "name", "count", "previous", "detail"])
    writer.writerow(["total", "incidents", report.total, report.previous_total, report.trend])
    for section, rows in (
        ("severity", report.by_severity),
        ("category", report.by_category),
        ("top_user", report.top_users),
        ("top_phrase", report.top_phrases),
        ("high_risk", report.high_risk),
    ):
        for row in rows:
            detail = "; ".join(f"{k}={v}" for k, v in row.extra.items())
            writer.writerow([_safe_cell(x) for x in (section, row.name, row.count, row.previous, detail)])
    for name in report.new_pupils:
        writer.writerow(["new_pupil", _safe_cell(name), "", "", ""])
    for name in report.repeat_pupils:
        writer.writerow(["repeat_pupil", _safe_cell(name), "", "", ""])
    writer.writerow(["alerts", "sent", report.alerts_sent, "", ""])
    return out.getvalue()


def _context(report: Report) -> dict[str, Any]:
    def scale(rows: Sequence[Row]) -> int:
        return max([r.count for r in rows] + [r.previous for r in rows] + [1])

    return {
        "r": report,
        "title": report.title,
        "tz": report.tz,
        "trend_text": trend_text,
        "sev_max": scale(report.by_severity),
        "cat_max": scale(report.by_category),
        "user_max": scale(report.top_users),
        "phrase_max": scale(report.top_phrases),
    }


def render_html(report: Report) -> str:
    return render("report.html.j2", **_context(report))


def render_text(report: Report) -> str:
    return render("report.txt.j2", **_context(report))


async def send_report(report: Report, settings: SmtpSettings, recipients: Sequence[str]) -> str:
    """E-mail the report (text, HTML, CSV attachment); return the Message-ID. Raises aiosmtplib errors."""
    import aiosmtplib

    filename = f"netmon-{report.period}-{report.end.astimezone(report.tz):%Y-%m-%d}.csv"
    message = build_message(
        subject=f"[netmon] {report.period.capitalize()} safeguarding report",
        sender=settings.mail_from,
        recipients=tuple(recipients),
        text=render_text(report),
        html=render_html(report),
        attachments=((filename, "text/csv", to_csv(report).encode("utf-8-sig")),),
    )
    client = aiosmtplib.SMTP(**settings.client_kwargs())
    async with client:
        await client.send_message(message)
    return str(message["Message-ID"])
