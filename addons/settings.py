"""Options shared by every netmon addon, declared once, validated at start-up; and the one school
policy of the proxy process (:class:`SharedPolicy`)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions

from netmon.config import paths
from netmon.config.policy import Policy, PolicySource

log = logging.getLogger(__name__)


def _default_db() -> str:
    return paths.default_db_url()


class Settings:
    """Declares the shared ``netmon_*`` options (paths, database, scanning limits)."""

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option(
            "netmon_db",
            str,
            _default_db(),
            "Database URL of the incident store (SQLite file or PostgreSQL URL).",
        )
        loader.add_option(
            "netmon_state_dir",
            str,
            str(paths.state_dir()),
            "Directory for runtime state: status.json, spill files, imported lists.",
        )
        loader.add_option(
            "netmon_library",
            str,
            str(paths.DEFAULT_LIBRARY_DIR),
            "Phrase library directory (categories.txt plus <lang>/<category>.txt files).",
        )
        loader.add_option(
            "netmon_library_overlay",
            str,
            os.environ.get("NETMON_LIBRARY_OVERLAY", ""),
            "The school's own library overlay directory (additions, overrides, removals).",
        )
        loader.add_option(
            "netmon_policy",
            str,
            str(paths.DEFAULT_POLICY_DIR),
            "Policy directory (groups, recording, alerts, filtering, AUP).",
        )
        loader.add_option(
            "netmon_site",
            str,
            os.environ.get("NETMON_SITE", ""),
            "Name of this school/site, recorded on every incident.",
        )
        loader.add_option(
            "netmon_scan_workers", int, 1, "Worker processes that scan traffic off the event loop."
        )
        loader.add_option(
            "netmon_proxy_workers",
            int,
            1,
            "mitmdump processes `netmon run` starts, on consecutive ports from listen_port; the gateway's "
            "ruleset spreads devices over them by source address. Only the first sends alert e-mails.",
        )
        loader.add_option(
            "netmon_worker_index",
            int,
            0,
            "This process's place among the proxy workers (set by `netmon run`; 0 with one worker).",
        )
        loader.add_option(
            "netmon_scan_max_bytes",
            int,
            2_000_000,
            "Bytes of each decoded body that are scanned; the rest is skipped (counted).",
        )
        loader.add_option(
            "netmon_scan_queue", int, 512, "Scan jobs in flight before further pages are skipped (counted)."
        )
        loader.add_option(
            "netmon_dedup_minutes",
            int,
            10,
            "Window in which the same user + URL + phrase is one incident with a count.",
        )

    def configure(self, updated: set[str]) -> None:
        check(ctx.options, updated)


def check(opts: Any, updated: set[str] | None = None) -> None:
    """Validate the shared options (also called by `netmon run` before mitmdump starts)."""
    updated = set(opts.keys()) if updated is None else updated
    if "netmon_scan_workers" in updated and not 1 <= opts.netmon_scan_workers <= 64:
        raise exceptions.OptionsError(f"netmon_scan_workers: must be 1-64 (got {opts.netmon_scan_workers})")
    if "netmon_scan_max_bytes" in updated and opts.netmon_scan_max_bytes < 1024:
        raise exceptions.OptionsError(
            f"netmon_scan_max_bytes: must be at least 1024 (got {opts.netmon_scan_max_bytes})"
        )
    if "netmon_scan_queue" in updated and opts.netmon_scan_queue < 1:
        raise exceptions.OptionsError(f"netmon_scan_queue: must be >= 1 (got {opts.netmon_scan_queue})")
    if "netmon_dedup_minutes" in updated and opts.netmon_dedup_minutes < 0:
        raise exceptions.OptionsError(f"netmon_dedup_minutes: must be >= 0 (got {opts.netmon_dedup_minutes})")
    for name in ("netmon_library", "netmon_policy"):
        if name in updated and not Path(getattr(opts, name)).is_dir():
            raise exceptions.OptionsError(f"{name}: no such directory: {getattr(opts, name)}")
    if "netmon_library_overlay" in updated and opts.netmon_library_overlay:
        if not Path(opts.netmon_library_overlay).is_dir():
            raise exceptions.OptionsError(
                f"netmon_library_overlay: no such directory: {opts.netmon_library_overlay}"
            )


class SharedPolicy:
    """The school policy (``policy/school.yaml`` + ``alerts.yaml``) loaded once per proxy process.

    The composition root makes one and hands it to every part that uses the policy (the alert delivery
    and the filtering group lookup): :meth:`use` loads the directory once (a second caller with the same
    directory shares the same :class:`~netmon.config.policy.PolicySource`), and the source's one watcher
    reloads it for all of them. Raises :class:`~netmon.errors.ConfigError` when the policy is invalid.
    """

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.source: PolicySource | None = None
        self._lock = threading.Lock()

    def use(self, directory: str | Path, site: str | None = None) -> PolicySource:
        """The source for ``directory`` with ``site``'s overlay (``netmon_site``; None: ``NETMON_SITE``)."""
        path = Path(directory).resolve()
        with self._lock:
            if self.source is None or self.source.directory.resolve() != path or self.source.site != site:
                new = PolicySource(path, interval=self.interval, site=site)
                old, self.source = self.source, new
                if old is not None and old.running:
                    old.stop()
                    new.start()
            return self.source

    @property
    def current(self) -> Policy | None:
        return self.source.current if self.source is not None else None

    def start(self) -> None:
        if self.source is not None:
            self.source.start()

    def stop(self) -> None:
        if self.source is not None:
            self.source.stop()
