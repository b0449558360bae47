"""The record of passed-through TLS visits: one audit event ``tls.passthrough`` per device, name, address
and reason (never content), written by a background thread so the proxy's event loop never waits for the
store. The proxy's ``TlsPolicy`` hands over plain :class:`Visit` values; SQL stays here, in the core.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from netmon.ops import counters

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Visit:
    client_ip: str
    host: str  # the name the device sent (SNI), or the address when it sent none
    address: str  # where the connection really went (the original destination)
    reason: str  # "no-decrypt" | "refused-before"
    user: str | None = None


class VisitLog:
    """Queues visits (bounded: a full queue drops and counts ``tls.visit-log.dropped``) and writes them in
    batches of up to 200 per transaction."""

    def __init__(self, db_url: str, maxsize: int = 1000) -> None:
        self.db_url = db_url
        self._queue: queue.Queue[Visit | None] = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._run, name="netmon-tls-visits", daemon=True)
        self._thread.start()

    def add(self, visit: Visit) -> None:
        try:
            self._queue.put_nowait(visit)
        except queue.Full:
            counters.incr("tls.visit-log.dropped")

    def close(self, timeout: float = 10.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.orm import Session

        from netmon.store.db import make_engine
        from netmon.store.incidents import audit

        engine = make_engine(self.db_url)
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                while item is not None and len(batch) < 200:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                rows = [entry for entry in batch if entry is not None]
                if rows:
                    try:
                        with Session(engine) as session, session.begin():
                            for visit in rows:
                                audit(
                                    session,
                                    "tls.passthrough",
                                    actor=visit.user or visit.client_ip,
                                    subject=visit.host,
                                    client_ip=visit.client_ip,
                                    address=visit.address,
                                    reason=visit.reason,
                                )
                        counters.incr("tls.visit-log.written", len(rows))
                    except SQLAlchemyError as exc:
                        counters.incr("tls.visit-log.failed", len(rows))
                        log.warning("passthrough visits not recorded: %s", exc.__class__.__name__)
                if None in batch:
                    return
        finally:
            engine.dispose()
