"""``netmon report --period daily|weekly|monthly [--site S] [--weeks N] [--db URL] [--send] [-o FILE]``.

The text it prints ends with the console dashboard's figures (``netmon.incidents.dashboard``: incidents
per week by category and by year group, open versus closed, time to first review), the same numbers
the dashboard page shows for the same store and site."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from netmon.config.paths import DEFAULT_POLICY_DIR, default_db_url
from netmon.config.policy import Policy
from netmon.errors import NetmonError


@click.command()
@click.option(
    "--period",
    type=click.Choice(["daily", "weekly", "monthly"]),
    default="weekly",
    show_default=True,
    help="Length of the period (1, 7 or 30 days) ending now or at --until.",
)
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
@click.option("--until", default=None, help="End of the period, ISO date/time (default: now).")
@click.option(
    "--site",
    default=None,
    help="One school of a trust sharing the store (its NETMON_SITE); default: every site (the trust).",
)
@click.option(
    "--weeks",
    type=click.IntRange(1, 52),
    default=8,
    show_default=True,
    help="Weeks of the dashboard figures printed after the report (as the console's dashboard shows).",
)
@click.option(
    "--send", is_flag=True, help="E-mail the report (HTML with CSV attachment) to the report recipients."
)
@click.option(
    "--to",
    "recipients",
    multiple=True,
    help="Recipient address (repeatable; default: reports.to in the policy's alerts.yaml).",
)
@click.option(
    "--policy",
    "policy_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Policy directory (time zone, report recipients).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the HTML report to FILE ('-' for standard output).",
)
@click.option(
    "--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="Write the CSV to FILE."
)
def report(
    period: str,
    db_url: str | None,
    until: str | None,
    site: str | None,
    weeks: int,
    send: bool,
    recipients: tuple[str, ...],
    policy_dir: Path | None,
    output: Path | None,
    csv_path: Path | None,
) -> None:
    """Safeguarding report: counts by severity and category, top pupils and phrases, high-risk pupils,
    new vs repeat pupils and the trend against the previous period.

    Prints the text summary, then the console dashboard's figures (per week by category and year
    group, open versus closed, time to first review); -o writes the HTML; --send e-mails it (SMTP from
    NETMON_SMTP_*). --site reports one school of a trust.
    """
    from sqlalchemy.orm import Session

    from netmon.alerts.mail import LONDON, SmtpSettings
    from netmon.config.policy import load_policy
    from netmon.incidents import dashboard
    from netmon.incidents.reports import build_report, render_html, render_text, send_report, to_csv
    from netmon.store.db import open_store
    from netmon.store.incidents import audit

    end = None
    if until:
        try:
            end = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"not an ISO date/time: {until!r}", param_hint="--until") from None
        if end.tzinfo is None:
            end = end.replace(tzinfo=LONDON)
        end = end.astimezone(UTC)
    try:
        policy = load_policy(policy_dir or DEFAULT_POLICY_DIR) if (send or policy_dir) else _quiet_policy()
        engine = open_store(db_url or default_db_url())
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        watch = policy.groups.get("high-risk") if policy else None
        result = build_report(
            engine,
            period,
            until=end,
            tz=policy.timezone if policy else LONDON,
            watch_list=watch.users if watch is not None else frozenset(),
            site=site or None,
        )
        if output is not None:
            html = render_html(result)
            if str(output) == "-":
                click.echo(html)
            else:
                output.write_text(html, encoding="utf-8")
        if csv_path is not None:
            csv_path.write_text(to_csv(result), encoding="utf-8-sig")
        if output is None or str(output) != "-":
            with Session(engine) as session:
                figures = dashboard.figures(session, None, weeks, now=end, site=site or None)
            click.echo(render_text(result))
            click.echo(dashboard.render_text(figures))
        if send:
            to = list(recipients) or list(policy.report_to if policy else ())
            if not to:
                raise click.ClickException(
                    "no report recipients: use --to or set reports.to in alerts.yaml "
                    "(NETMON_ALERT_TO for the default policy)"
                )
            try:
                settings = SmtpSettings.from_env(os.environ)
                message_id = asyncio.run(send_report(result, settings, to))
            except NetmonError as exc:
                raise click.ClickException(str(exc)) from exc
            except Exception as exc:  # noqa: BLE001 - any SMTP/network failure becomes one line and exit 1
                with Session(engine) as session, session.begin():
                    audit(
                        session,
                        "report.failed",
                        actor="system",
                        subject=period,
                        reason=f"{exc.__class__.__name__}: {exc}"[:500],
                    )
                raise click.ClickException(f"report not sent: {exc.__class__.__name__}: {exc}") from exc
            with Session(engine) as session, session.begin():
                audit(
                    session,
                    "report.sent",
                    actor="system",
                    subject=period,
                    recipients=to,
                    message_id=message_id,
                    incidents=result.total,
                )
            click.echo(f"report sent to {', '.join(to)}", err=True)
    finally:
        engine.dispose()


def _quiet_policy() -> Policy | None:
    """The default policy when it is valid (time zone, high-risk list); a report never fails for it."""
    from netmon.config.policy import check_policy

    policy, _ = check_policy(DEFAULT_POLICY_DIR)
    return policy
