"""``netmon doctor``: check a running gateway and say what is wrong and how to fix it."""

from __future__ import annotations

import os
from pathlib import Path

import click

from netmon.config.paths import DEFAULT_MITM_CONFIG

DEFAULT_ENV_FILE = Path("/etc/netmon/netmon.env")
_MARK = {"ok": ("ok", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "red")}


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The proxy's options file (default: NETMON_CONFIG or the shipped mitm_config.yaml).",
)
@click.option(
    "--interface",
    default=None,
    help="The pupils' interface (default: PUPIL_IF in /etc/netmon/netmon-vars.nft or NETMON_PUPIL_IF).",
)
@click.option(
    "--nft-vars",
    type=click.Path(path_type=Path),
    default=None,
    help="The site values of the firewall (default /etc/netmon/netmon-vars.nft).",
)
@click.option(
    "--proxy-port", type=int, default=None, help="Port the proxy listens on (default: from the config)."
)
@click.option(
    "--portal-port",
    type=int,
    default=None,
    help="Port of the captive portal (default: NETMON_PORTAL_PORT or 8090).",
)
@click.option(
    "--db", "db_url", default=None, help="Database URL (default: NETMON_DB or the config's netmon_db)."
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The proxy's state directory holding status.json (default: from the config).",
)
@click.option(
    "--confdir",
    type=click.Path(path_type=Path),
    default=None,
    help="mitmproxy confdir holding the school's CA (default: from the config, else ~/.mitmproxy).",
)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Environment file of the services (default /etc/netmon/netmon.env when present); "
    "variables already set (non-empty) win.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def doctor(
    config_path: Path | None,
    interface: str | None,
    nft_vars: Path | None,
    proxy_port: int | None,
    portal_port: int | None,
    db_url: str | None,
    state_dir: Path | None,
    confdir: Path | None,
    env_file: Path | None,
    as_json: bool,
) -> None:
    """Check the gateway: forwarding, firewall rules, proxy and portal, CA, database, mail, library, policy.

    Exits with status 1 when any check fails (warnings alone exit 0).
    """
    from netmon.ops import doctor as doc

    env_path = env_file or DEFAULT_ENV_FILE
    if env_file is not None or env_path.exists():
        try:
            for key, value in doc.read_env_file(env_path).items():
                if not os.environ.get(key):
                    os.environ[key] = value
        except OSError as exc:
            raise click.ClickException(f"{env_path}: cannot read: {exc.strerror}") from exc
    config = config_path or Path(os.environ.get("NETMON_CONFIG") or DEFAULT_MITM_CONFIG)
    if config_path is not None and not config.exists():
        raise click.ClickException(f"{config}: no such file")
    try:
        settings = doc.settings_from(
            config,
            nft_vars=nft_vars,
            interface=interface,
            proxy_port=proxy_port,
            portal_port=portal_port,
            db_url=db_url,
            state_dir=state_dir.resolve() if state_dir else None,
            confdir=confdir.resolve() if confdir else None,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    results = doc.run_checks(settings)
    if as_json:
        click.echo(doc.as_json(results))
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            label, colour = _MARK[r.status]
            click.echo(f"{click.style(f'{label:>4}', fg=colour)}  {r.name:<{width}}  {r.message}")
            if r.fix and r.status != "ok":
                click.echo(f"{'':>4}  {'':<{width}}  fix: {r.fix}")
    failed = [r.name for r in results if r.status == "fail"]
    if failed:
        if not as_json:
            click.echo(f"\n{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        raise SystemExit(1)
