"""StatusWriter: writes the process counters to <state dir>/status.json (``status.<i>.json`` for proxy
worker i > 0) for `netmon status`/`doctor`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mitmproxy import ctx

from netmon.ops import counters

log = logging.getLogger(__name__)

INTERVAL = 5.0


class StatusWriter:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def _path(self) -> Path:
        return Path(ctx.options.netmon_state_dir) / counters.status_name(ctx.options.netmon_worker_index)

    def _extra(self) -> dict[str, object]:
        opts = ctx.options
        return {
            "mode": list(opts.mode),
            "listen_host": opts.listen_host,
            "listen_port": opts.listen_port,
            "worker": opts.netmon_worker_index,
            "workers": opts.netmon_proxy_workers,
        }

    async def _loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await asyncio.to_thread(counters.write_status, self._path(), self._extra())
            except OSError as exc:  # disk full, permissions: keep trying, say so once
                counters.incr("status.write-failed")
                if not failing:
                    log.error(
                        "cannot write the status file %s: %s; retrying", self._path(), exc.strerror or exc
                    )
                failing = True
                continue
            if failing:
                log.warning("status file written again")
                failing = False

    def running(self) -> None:
        try:
            counters.write_status(self._path(), self._extra())
        except OSError as exc:
            counters.incr("status.write-failed")
            log.error("cannot write the status file %s: %s; retrying", self._path(), exc.strerror or exc)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            counters.write_status(self._path(), {**self._extra(), "stopped": True})
        except OSError as exc:
            log.warning("could not write status file: %s", exc)
