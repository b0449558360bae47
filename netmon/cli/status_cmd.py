"""``netmon status``: the running proxy's counters (TLS decisions, scan skips) from its status.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from netmon import counters, paths

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
    from netmon.doctor import read_options

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
def status(state_dir: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Show the proxy's counters: decrypted, passed-through and refused TLS connections, scan skips."""
    directory = state_dir or _state_dir_from_config(config_path) or paths.state_dir()
    path = directory / "status.json"
    data = counters.read_status(path)
    if data is None:
        raise click.ClickException(
            f"{path}: no status (is the proxy running with netmon_state_dir={directory}?)"
        )
    if as_json:
        click.echo(json.dumps(data, indent=1, sort_keys=True))
        return
    c: dict[str, int] = data.get("counters") or {}  # type: ignore[assignment]
    age = time.time() - float(data.get("updated", 0))  # type: ignore[arg-type]
    state = "stopped" if data.get("stopped") else ("running" if age < 30 else "not updating (stopped?)")
    modes = ", ".join(data.get("mode") or [])  # type: ignore[arg-type]
    click.echo(
        f"proxy: {state} (pid {data.get('pid')}, mode {modes or '?'}, "
        f"port {data.get('listen_port')}), updated {age:.0f} s ago"
    )
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
