"""``netmon run``: validate everything, then start mitmdump with netmon's addons.

Registered in netmon.cli.COMMANDS; it lives with the adapters because it is the one command that starts
mitmproxy (the core never imports it).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from netmon.config.paths import DEFAULT_MITM_CONFIG, DEFAULT_POLICY_DIR
from netmon.errors import NetmonError


def _preflight(values: dict[str, Any]) -> None:
    """Fail start-up with one clear line when the library, policy or store is unusable."""
    from netmon.scan.library import load_library
    from netmon.store.db import upgrade

    overlay = values.get("netmon_library_overlay") or None
    load_library(Path(values["netmon_library"]), Path(overlay) if overlay else None)
    from netmon.alerts.mail import SmtpSettings
    from netmon.alerts.rules import RuleEngine
    from netmon.config.policy import load_policy

    RuleEngine(load_policy(Path(values["netmon_policy"])))  # the webhook URL is checked here too
    if values.get("netmon_alerts", True):
        SmtpSettings.from_env(os.environ)
    from netmon.lists.filtering import build_lists, load_filtering

    filtering = Path(values.get("netmon_filtering") or Path(values["netmon_policy"]) / "filtering.yaml")
    if not values.get("netmon_filtering") and not filtering.is_file():
        filtering = DEFAULT_POLICY_DIR / "filtering.yaml"  # as the proxy does: monitor-only default
    build_lists(
        load_filtering(filtering),
        values.get("netmon_hash_lists", ()),
        values.get("netmon_url_lists", ()),
        values.get("netmon_ut1") or "off",
    )
    Path(values["netmon_state_dir"]).mkdir(parents=True, exist_ok=True)
    upgrade(values["netmon_db"])


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="mitmproxy + netmon options file (default: NETMON_CONFIG or the shipped mitm_config.yaml).",
)
@click.option("--port", type=int, default=None, help="Proxy port (default 8080).")
@click.option("--listen-host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--mode",
    "modes",
    multiple=True,
    help="mitmproxy mode: regular (explicit proxy, default), transparent, ... (repeatable).",
)
@click.option("--db", "db_url", default=None, help="Database URL (default: SQLite file in ./var).")
@click.option("--library", type=click.Path(path_type=Path), default=None, help="Phrase library directory.")
@click.option("--overlay", type=click.Path(path_type=Path), default=None, help="School library overlay.")
@click.option("--policy", type=click.Path(path_type=Path), default=None, help="Policy directory.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None, help="Runtime state directory.")
@click.option(
    "--confdir",
    type=click.Path(path_type=Path),
    default=None,
    help="mitmproxy confdir: where the school's CA certificate and key live.",
)
@click.option("--portal/--no-portal", default=None, help="Require captive-portal sign-in before browsing.")
@click.option(
    "--hash-list",
    "hash_lists",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Add an image hash list CSV for this run (repeatable).",
)
@click.option(
    "--url-list",
    "url_lists",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Add a URL list CSV for this run (repeatable).",
)
@click.option(
    "-s",
    "--script",
    "scripts",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Load an extra mitmproxy script after netmon's addons (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Proxy processes, on consecutive ports from --port (default 1; netmon_proxy_workers).",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set any option (repeatable).")
@click.option("--check", is_flag=True, help="Validate the configuration and exit without starting.")
def run(
    config_path: Path | None,
    port: int | None,
    listen_host: str | None,
    modes: tuple[str, ...],
    db_url: str | None,
    library: Path | None,
    overlay: Path | None,
    policy: Path | None,
    state_dir: Path | None,
    confdir: Path | None,
    portal: bool | None,
    hash_lists: tuple[Path, ...],
    url_lists: tuple[Path, ...],
    scripts: tuple[Path, ...],
    workers: int | None,
    sets: tuple[str, ...],
    check: bool,
) -> None:
    """Start netmon: mitmproxy with the monitoring addons (explicit proxy on 127.0.0.1:8080 by default)."""
    from netmon_proxy import launch

    config = config_path or Path(os.environ.get("NETMON_CONFIG") or DEFAULT_MITM_CONFIG)
    try:
        opts = launch.option_manager()
        defaults = {k: getattr(opts, k) for k in opts.keys()}
        values: dict[str, Any] = {"listen_host": "127.0.0.1", "flow_detail": 0}
        if config.exists() or config_path is not None:
            values.update(launch.read_config(config))
        overrides: dict[str, Any] = {}
        if port is not None:
            overrides["listen_port"] = port
        if listen_host is not None:
            overrides["listen_host"] = listen_host
        if modes:
            overrides["mode"] = list(modes)
        if db_url is not None:
            overrides["netmon_db"] = db_url
        for key, path in (
            ("netmon_library", library),
            ("netmon_library_overlay", overlay),
            ("netmon_policy", policy),
            ("netmon_state_dir", state_dir),
            ("confdir", confdir),
        ):
            if path is not None:
                overrides[key] = str(path.resolve())
        if portal is not None:
            overrides["netmon_portal"] = portal
        if workers is not None:
            overrides["netmon_proxy_workers"] = workers
        if hash_lists:
            overrides["netmon_hash_lists"] = [
                *values.get("netmon_hash_lists", []),
                *(str(p.resolve()) for p in hash_lists),
            ]
        if url_lists:
            overrides["netmon_url_lists"] = [
                *values.get("netmon_url_lists", []),
                *(str(p.resolve()) for p in url_lists),
            ]
        launch.validate(opts, values, str(config))
        launch.validate(opts, {**overrides, **launch.parse_sets(sets, opts)}, "command line")
        if opts.netmon_db == defaults["netmon_db"] and not os.environ.get("NETMON_DB"):
            # the embedded default follows the state directory
            opts.update(netmon_db=f"sqlite:///{Path(opts.netmon_state_dir).resolve() / 'netmon.db'}")
        merged = {k: getattr(opts, k) for k in opts.keys()}
        _preflight(merged)
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    changed = [k for k in opts.keys() if merged[k] != defaults[k]]
    count = merged["netmon_proxy_workers"]
    ports = f"{merged['listen_port']}" + (f"-{merged['listen_port'] + count - 1}" if count > 1 else "")
    where = f"{merged['listen_host']}:{ports}"
    if check:
        click.echo(
            f"configuration OK ({config}); proxy would listen on {where} in mode {', '.join(merged['mode'])}"
            + (f" ({count} workers)" if count > 1 else "")
        )
        return
    click.echo(
        f"netmon: proxy on {where} (mode {', '.join(merged['mode'])}"
        + (f", {count} workers" if count > 1 else "")
        + f"), store {_display_db(merged['netmon_db'])}",
        err=True,
    )
    extra = [a for script in scripts for a in ("-s", str(script.resolve()))]
    logging.getLogger().handlers.clear()  # mitmproxy's own log handler takes over from here
    if count == 1:
        launch.run_mitmdump(launch.mitmdump_args(opts, changed) + extra)
    else:
        mine = {"listen_port", "netmon_worker_index", "netmon_alerts"}
        args = launch.mitmdump_args(opts, [k for k in changed if k not in mine]) + extra
        school_ca(merged)  # before the workers: each would otherwise make its own CA on a first start
        raise SystemExit(supervise(args, merged["listen_port"], count, merged["netmon_alerts"]))


def school_ca(options: dict[str, object]) -> None:
    """Make the school's CA in the confdir once, if it is not there yet. Several workers started on an
    empty confdir would each write a CA of their own, and a device that installed one CA would then
    refuse every connection served by the other workers."""
    from mitmproxy.certs import CertStore
    from mitmproxy.options import CONF_BASENAME

    passphrase = str(options.get("cert_passphrase") or "")
    CertStore.from_store(
        path=Path(str(options["confdir"])).expanduser(),
        basename=CONF_BASENAME,
        key_size=int(options["key_size"]),  # type: ignore[call-overload]
        passphrase=passphrase.encode() if passphrase else None,
    )


def supervise(args: list[str], port: int, count: int, alerts: bool = True) -> int:
    """Run ``count`` proxy workers on ports ``port``.. and wait. Worker 0 alone sends alert e-mails.
    When one worker exits, the others are stopped and its exit code returned (systemd restarts them
    all); SIGTERM and SIGINT are passed on, so queued incidents are written before the end."""
    procs: list[subprocess.Popen[bytes]] = []
    for index in range(count):
        own = ["--set", f"listen_port={port + index}", "--set", f"netmon_worker_index={index}"]
        own += ["--set", f"netmon_alerts={'true' if alerts and index == 0 else 'false'}"]
        procs.append(subprocess.Popen([sys.executable, "-m", "netmon_proxy.launch", *args, *own]))

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while all(proc.poll() is None for proc in procs):
        time.sleep(0.2)
    code = next(proc.returncode for proc in procs if proc.poll() is not None)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


def _display_db(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
