"""``netmon purge``: delete what is past the school's retention periods (policy/retention.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from netmon.config import paths
from netmon.errors import NetmonError


@click.command()
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite in ./var).")
@click.option(
    "--policy",
    "policy_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Policy directory holding retention.yaml (default: the shipped policy).",
)
@click.option(
    "--state-dir",
    "state",
    type=click.Path(path_type=Path),
    default=None,
    help="State directory with the incident spill files (default: NETMON_STATE_DIR or ./var).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def purge(db_url: str | None, policy_dir: Path | None, state: Path | None, dry_run: bool) -> None:
    """Delete what is past its retention period: incidents, captures, sessions, the TLS visit log, AUP
    acceptances, alerts, audit events and spill lines. Prints the counts; a real purge records them
    in the audit log (counts only, never content)."""
    from netmon.ops.retention import load_retention
    from netmon.ops.retention import purge as run_purge
    from netmon.store.db import make_engine

    try:
        retention = load_retention(policy_dir or paths.DEFAULT_POLICY_DIR)
        engine = make_engine(db_url or paths.default_db_url())
        try:
            counts = run_purge(engine, retention, datetime.now(UTC), state or paths.state_dir(), dry_run)
        finally:
            engine.dispose()
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "would delete" if dry_run else "deleted"
    for kind, count in counts.items():
        click.echo(f"{verb:>12} {count:>8}  {kind.replace('_', ' ')}")
