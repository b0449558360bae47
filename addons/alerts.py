"""AlertDelivery: the school's policy for the recorder (what is recorded, which alerts fire) and the
e-mail sender as a task in mitmdump's event loop.

- ``hit_filter(context, hit)`` and ``after_batch(session, incidents)`` are registered on the
  :class:`~netmon_proxy.recorder.IncidentRecorder` given to the constructor; ``after_batch`` runs in the
  recorder's writer thread, ``hit_filter`` there and also on the event loop (the recorder asks it before
  queueing a result; it reads memory only, never blocks), both on the current snapshot of the process's one policy (:class:`~netmon_proxy.settings.SharedPolicy`,
  shared with the filtering group lookup and reloaded by one watcher).
- The :class:`~netmon.alerts.sender.AlertSender` task does every database step in a thread
  (``asyncio.to_thread``) and SMTP natively; ``done`` stops it. Alerts already in the outbox survive a
  stop and are sent by the next start.

Fails open for traffic (nothing here touches a flow). A broken policy fails start-up with one line; a
broken edit at run time keeps the previous policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions
from netmon_proxy.settings import SharedPolicy

from netmon.errors import ConfigError

log = logging.getLogger(__name__)


class AlertDelivery:
    def __init__(self, recorder: Any = None, policy: SharedPolicy | None = None) -> None:
        self.policy = policy if policy is not None else SharedPolicy()
        self.watcher: Any = None  # the PolicySource in use (read .current)
        self.sender: Any = None
        self._task: asyncio.Task[None] | None = None
        self._rules: Any = None
        if recorder is not None:
            recorder.hit_filters.append(self.hit_filter)
            recorder.after_batch.append(self.after_batch)

    def load(self, loader: Any) -> None:
        loader.add_option(
            "netmon_alerts",
            bool,
            True,
            "Send alert e-mails from this proxy (SMTP settings from NETMON_SMTP_* variables).",
        )

    def configure(self, updated: set[str]) -> None:
        from netmon.config.settings import SmtpSettings

        if "netmon_policy" in updated:
            from netmon.alerts.rules import RuleEngine

            try:
                self.watcher = self.policy.use(
                    Path(ctx.options.netmon_policy), site=getattr(ctx.options, "netmon_site", None)
                )
                watcher = self.watcher
                # made here, not in the writer's thread: a bad NETMON_WEBHOOK_URL stops start-up with one line
                self._rules = RuleEngine(lambda: watcher.current)
            except ConfigError as exc:
                raise exceptions.OptionsError(str(exc)) from exc
        if "netmon_alerts" in updated and ctx.options.netmon_alerts:
            try:
                SmtpSettings.from_env(os.environ)
            except ConfigError as exc:
                raise exceptions.OptionsError(str(exc)) from exc

    # -- called by the incident writer thread ------------------------------------------------------
    def hit_filter(self, context: Any, hit: Any) -> bool:
        if self.watcher is None:
            return True
        policy = self.watcher.current
        groups = policy.groups_for(context.user, context.role, context.year_group, context.groups)
        return bool(policy.records(groups, hit.category, hit.severity))

    def after_batch(self, session: Any, incidents: list[Any]) -> None:
        if self.watcher is None or self._rules is None:
            return
        self._rules(session, incidents)

    # -- lifecycle -------------------------------------------------------------------------------
    def running(self) -> None:
        from netmon.alerts.sender import AlertSender
        from netmon.config.settings import SmtpSettings

        if self.watcher is not None:
            self.watcher.start()
            policy = self.watcher.current
            if not any(r.enabled and (r.to or r.to_groups or r.to_sites) for r in policy.rules):
                log.warning(
                    "no alert recipients in %s: alerts are not mailed (set NETMON_ALERT_TO)", policy.directory
                )
        if not ctx.options.netmon_alerts or self._task is not None:
            return
        settings = SmtpSettings.from_env(os.environ)
        tz = self.watcher.current.timezone if self.watcher is not None else None
        self.sender = AlertSender(ctx.options.netmon_db, settings, tz=tz)
        self._task = asyncio.get_running_loop().create_task(self.sender.run(), name="netmon-alert-sender")
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("alert sender stopped unexpectedly: %r", task.exception())

    def done(self) -> None:
        if self.sender is not None:
            self.sender.stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.watcher is not None:
            self.watcher.stop()
