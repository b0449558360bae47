"""``netmon status``: the running proxy's counters (TLS decisions, scan skips) from its status.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from netmon.config import paths
from netmon.ops import counters

TLS_ROWS = (
    ("decrypted", "tls.decrypted", "connections intercepted with the school's CA"),
    ("passthrough", "tls.passthrough", "connections passed through undecrypted (hostname still monitored)"),
    ("  no-decrypt list", "tls.passthrough.no-decrypt", "banking, health, government..."),
    ("  refused before", "tls.passthrough.refused-before", "device had refused the school's certificate"),
    ("refused", "tls.refused", "handshakes a device refused (no CA installed, or a pinned app)"),
)


def _state_dir_from_config(config: Path | None) -> Path | None:
    if config is None or not config.exists():
        return None
    from netmon.ops.doctor import read_options

    try:
        value = read_options(config).get("netmon_state_dir")
    except ValueError:
        return None
    return Path(value) if value else None


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The proxy's state directory (default: from --config, else NETMON_STATE_DIR or ./var).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The proxy's options file, to find its state directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print status.json as it is.")
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Also list the sites passed through undecrypted (from the store's audit events).",
)
@click.option("--hours", type=click.IntRange(1), default=24, show_default=True, help="Period for --db.")
def status(
    state_dir: Path | None, config_path: Path | None, as_json: bool, db_url: str | None, hours: int
) -> None:
    """Show the proxy's counters: decrypted, passed-through and refused TLS connections, scan skips."""
    directory = state_dir or _state_dir_from_config(config_path) or paths.state_dir()
    statuses = counters.read_statuses(directory)
    if not statuses:
        raise click.ClickException(
            f"{directory / 'status.json'}: no status "
            f"(is the proxy running with netmon_state_dir={directory}?)"
        )
    if as_json:
        data = (
            statuses[0]
            if len(statuses) == 1
            else {"workers": statuses, "counters": counters.summed(statuses)}
        )
        click.echo(json.dumps(data, indent=1, sort_keys=True))
        return
    c = counters.summed(statuses)
    for data in statuses:
        age = time.time() - float(data.get("updated", 0))  # type: ignore[arg-type]
        state = "stopped" if data.get("stopped") else ("running" if age < 30 else "not updating (stopped?)")
        modes = ", ".join(data.get("mode") or [])  # type: ignore[arg-type]
        name = "proxy" if len(statuses) == 1 else f"proxy worker {data.get('worker', '?')}"
        click.echo(
            f"{name}: {state} (pid {data.get('pid')}, mode {modes or '?'}, "
            f"port {data.get('listen_port')}), updated {age:.0f} s ago"
        )
    if len(statuses) > 1:
        click.echo(f"(counters below are summed over the {len(statuses)} workers)")
    for data in statuses:
        for part, message in sorted((data.get("problems") or {}).items()):  # type: ignore[union-attr]
            click.echo(f"PROBLEM {part}: {message}", err=True)
    click.echo("\nTLS connections")
    for label, key, help_text in TLS_ROWS:
        click.echo(f"  {label:<18} {c.get(key, 0):>10}   {help_text}")
    skips = sorted((k, v) for k, v in c.items() if k.startswith(("scan.skip", "image.skip")))
    click.echo("\nScan skips" + ("" if skips else ": none"))
    for key, value in skips:
        click.echo(f"  {key:<40} {value:>10}")
    shown = {key for _, key, _ in TLS_ROWS} | {k for k, _ in skips}
    others = sorted((k, v) for k, v in c.items() if k not in shown)
    if others:
        click.echo("\nOther counters")
        for key, value in others:
            click.echo(f"  {key:<40} {value:>10}")
    if db_url:
        _passthrough_sites(db_url, hours)


def _passthrough_sites(db_url: str, hours: int) -> None:
    """Sites passed through undecrypted in the last ``hours``: host, reason, devices, first records."""
    from datetime import timedelta

    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from netmon.errors import StoreError
    from netmon.store.base import utcnow
    from netmon.store.db import make_engine
    from netmon.store.incidents import AuditEvent

    try:
        engine = make_engine(db_url)
        with Session(engine) as session:
            rows = session.execute(
                select(AuditEvent.subject, AuditEvent.actor, AuditEvent.detail).where(
                    AuditEvent.action == "tls.passthrough",
                    AuditEvent.time >= utcnow() - timedelta(hours=hours),
                )
            ).all()
        engine.dispose()
    except (SQLAlchemyError, StoreError) as exc:
        raise click.ClickException(f"cannot read passthrough visits: {exc}") from exc
    sites: dict[tuple[str, str], set[str]] = {}
    for host, actor, detail in rows:
        reason = str((detail or {}).get("reason", "?"))
        sites.setdefault((host or "?", reason), set()).add(actor or "?")
    click.echo(f"\nSites passed through undecrypted (last {hours} h)" + ("" if sites else ": none"))
    for (host, reason), devices in sorted(sites.items(), key=lambda item: (-len(item[1]), item[0])):
        click.echo(f"  {host:<40} {reason:<16} {len(devices):>5} device(s)")
