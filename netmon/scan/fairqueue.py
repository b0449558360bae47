"""Scan jobs waiting for a worker: the riskiest first, and fair between devices.

Two classes: ``URGENT`` (search terms, chat and AI prompts, form posts, WebSocket messages: what a pupil
types) and ``BULK`` (page bodies a site sent). An urgent job never waits behind a bulk one. Within a
class each device has its own line and the lines are served in turn (round robin), so a device that
floods the proxy with jobs delays only its own: another device's next job waits for at most one job of
each busy device, not for the whole flood. A device that has just been served goes behind one that
has not: a newcomer's line is put ahead of it, so a flood that keeps its line full never gets two turns
in a row over a device that has just arrived.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from netmon.scan.search_terms import search_query

URGENT, BULK = 0, 1


def job_priority(job: Any) -> int:
    """``URGENT`` for what a pupil types (a WebSocket message, a request body, a search URL), else
    ``BULK``. Cheap: a search URL is looked up only when the URL has a query (a few microseconds)."""
    if getattr(job, "ws_message", None) is not None or getattr(job, "request_body", b""):
        return URGENT
    url = getattr(job, "request_url", "") or ""
    if "?" in url or "#" in url:
        context = getattr(job, "context", None)
        if search_query(url, host=getattr(context, "host", None) or None) is not None:
            return URGENT
    if not getattr(job, "response_body", None):
        return URGENT  # nothing but the URL: small
    return BULK


def job_size(job: object) -> int:
    """The bytes a job's bodies hold: what it costs to keep while it waits."""
    return sum(
        len(body) if isinstance(body, bytes | str) else 0
        for body in (
            getattr(job, "request_body", None),
            getattr(job, "response_body", None),
            getattr(job, "ws_message", None),
        )
    ) + 512


def job_device(job: Any) -> str:
    """The device a job came from, as the job says (client address or MAC); "" when it does not."""
    context = getattr(job, "context", None)
    return str(getattr(context, "client_ip", "") or getattr(context, "mac", "") or "")


class FairQueue[T]:
    """Items per (class, device); ``take`` serves the most urgent class, devices in turn."""

    def __init__(self) -> None:
        self._lines: tuple[OrderedDict[str, deque[T]], ...] = (OrderedDict(), OrderedDict())
        self._served: list[str | None] = [None, None]  # per class, the device served last
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def put(self, item: T, device: str = "", priority: int = BULK) -> None:
        lines = self._lines[priority]
        line = lines.get(device)
        if line is None:
            line = lines[device] = deque()
            served = self._served[priority]
            if served is not None and next(iter(lines)) == served:
                lines.move_to_end(device, last=False)  # ahead of the device served last
        line.append(item)
        self._size += 1

    def take(self) -> T | None:
        """The next item: the first of the next device's line in the most urgent class; None if empty."""
        for priority, lines in enumerate(self._lines):
            if lines:
                device, line = next(iter(lines.items()))
                self._served[priority] = device
                item = line.popleft()
                if line:
                    lines.move_to_end(device)  # this device's next item waits for the others' turns
                else:
                    del lines[device]
                self._size -= 1
                return item
        return None

    def drain(self) -> list[T]:
        """Everything waiting, in the order ``take`` would give it."""
        out = []
        while (item := self.take()) is not None:
            out.append(item)
        return out
