"""PhraseScanner: forward first, scan out of band in worker processes, record what matched.

Fails open: nothing here can delay or break a pupil's traffic. Hooks only copy the bytes the flow
already holds into a plain job and hand it to the pool; a full pool or a fault is a counted skip.

A response body that cannot be text (an image, a font, a download, a script or style sheet, by its
Content-Type and by its first bytes, as ``netmon.scan.extract.kinds.kind_of`` decides in the worker: a
page labelled ``image/png`` is still sent) is not copied to a worker, and a job left with nothing to
read (no request body, no search in the URL) is not sent at all: counted as the worker would count it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http
from netmon_proxy.context import BLOCKED_KEY, SKIP_KEY, flow_context, flow_host, flow_url

from netmon.hosts import is_ip
from netmon.ops import counters
from netmon.scan.extract import UNREAD, kind_of
from netmon.scan.findings import FlowContext, ScanResult
from netmon.scan.job import ScanJob
from netmon.scan.search_terms import search_query

log = logging.getLogger(__name__)


class PhraseScanner:
    def __init__(self, submit: Callable[[ScanResult], None]) -> None:
        self.submit = submit
        self.pool: Any = None
        self.watcher: Any = None
        self.max_bytes = 2_000_000

    def configure(self, updated: set[str]) -> None:
        if "netmon_scan_max_bytes" in updated:
            self.max_bytes = ctx.options.netmon_scan_max_bytes

    # -- lifecycle -------------------------------------------------------------------------------
    def running(self) -> None:
        from netmon.scan.library_watch import LibraryWatcher
        from netmon.scan.workers import ScanWorkers

        opts = ctx.options
        library = Path(opts.netmon_library)
        overlay = Path(opts.netmon_library_overlay) if opts.netmon_library_overlay else None
        self.pool = ScanWorkers(
            library,
            overlay,
            on_result=self._finished,
            on_error=self._failed,
            workers=opts.netmon_scan_workers,
            max_jobs=opts.netmon_scan_queue,
        )
        self.pool.start()

        def on_change(_library: Any) -> None:  # in the watcher's thread
            self.pool.reload(library, overlay)
            counters.incr("library.reloaded")
            log.warning("phrase library reloaded")

        def on_error(message: str) -> None:
            counters.incr("library.reload-failed")
            log.error("phrase library not reloaded, keeping the previous one: %s", message)

        self.watcher = LibraryWatcher(library, overlay, on_change=on_change, on_error=on_error)
        self.watcher.start()

    def done(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.pool is not None:
            self.pool.close()  # finish in-flight scans; their results reach the recorder
            self.pool = None

    # -- hooks -----------------------------------------------------------------------------------
    def response(self, flow: http.HTTPFlow) -> None:
        self._scan_flow(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and flow.request is not None:
            self._scan_flow(flow)  # the request side (search terms, form posts) still counts

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        try:
            assert flow.websocket is not None
            message = flow.websocket.messages[-1]
            job = ScanJob.for_websocket(
                context=_scan_context(flow),
                content=message.content,
                is_text=message.is_text,
                from_client=message.from_client,
                max_bytes=self.max_bytes,
            )
        except Exception:  # noqa: BLE001 - fail open, counted
            counters.incr("scan.error.job")
            log.exception("could not prepare a WebSocket scan job (traffic unaffected)")
            return
        self._dispatch(job, flow)

    # -- internals -------------------------------------------------------------------------------
    def _scan_flow(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(SKIP_KEY):
            return
        try:
            request = flow.request
            # a response netmon made itself (block page) is not what a site sent: scan the request only
            response = None if flow.metadata.get(BLOCKED_KEY) else flow.response
            body = request.raw_content or b""
            context = _scan_context(flow)
            response_headers = _body_headers(response.headers) if response else ()
            response_body = (response.raw_content or b"") if response else b""
            unread = _unread(response_headers, response_body) if response_body else None
            if unread is not None:
                counters.incr(f"scan.skipped.{unread}-type")
                response_body = b""
                host = context.host if context.host and not is_ip(context.host) else None  # as the job's
                if not body and search_query(context.url, host=host) is None:
                    return  # nothing left to read: no job
            job = ScanJob.for_http(
                context=context,
                request_headers=_body_headers(request.headers) if body else (),
                request_body=body,
                response_status=response.status_code if response else None,
                response_headers=response_headers,
                response_body=response_body,
                max_bytes=self.max_bytes,
            )
        except Exception:  # noqa: BLE001 - fail open, counted
            counters.incr("scan.error.job")
            log.exception("could not prepare a scan job (traffic unaffected)")
            return
        self._dispatch(job, flow)

    def _dispatch(self, job: Any, flow: http.HTTPFlow) -> None:
        pool = self.pool
        if pool is None:
            counters.incr("scan.skipped.not-running")
            return
        peer = flow.client_conn.peername
        try:
            # fair queueing per device: one device's flood delays only its own jobs
            queued = pool.submit(job, flow, device=peer[0] if peer else "")
        except Exception:  # noqa: BLE001 - a broken pool must not break traffic
            counters.incr("scan.error.pool")
            log.exception("scan workers refused a job (traffic unaffected)")
            return
        if not queued:
            counters.incr("scan.skipped.queue-full")

    def _failed(self, kind: str) -> None:
        """A job a worker could not scan ("job"), or one lost with a dead worker ("lost")."""
        counters.incr("scan.error.worker")

    def _finished(self, result: ScanResult, flow: http.HTTPFlow) -> None:
        """Runs on the event loop, when a worker's answer arrives: cheap (counters, a queue put).
        Only now, and only for a result with hits, is the flow's full who/where worked out."""
        counters.incr("scan.done")
        for reason in result.stats.skipped:
            counters.incr(f"scan.skipped.{reason}")
        if result.hits:
            counters.incr("scan.matched")
            # the job's context came from this flow (_scan_context): its host, URL and method are reused
            self.submit(replace(result, context=flow_context(flow, where=result.context)))


def _scan_context(flow: http.HTTPFlow) -> FlowContext:
    """What a scan reads of the flow's who/where (the URL and host name, for search terms and logs).
    The full context (user, device, time...) is worked out only for a result with hits: most pages
    have none, and this runs on the event loop for every page."""
    return FlowContext(
        time=0.0, client_ip="", host=flow_host(flow), url=flow_url(flow), method=flow.request.method
    )


def _body_headers(headers: http.Headers) -> tuple[tuple[str, str], ...]:
    """The headers a scan reads (type and encoding of the body): the job stays small to copy."""
    return tuple((name, value) for name in _BODY_HEADERS for value in headers.get_all(name))


_BODY_HEADERS = ("Content-Type", "Content-Encoding")


def _unread(headers: tuple[tuple[str, str], ...], body: bytes) -> str | None:
    """The kind of a response body that a worker would not read (``binary``, ``code``...), or None.
    Only an uncompressed body is judged here (its first bytes are at hand); a compressed one goes to
    the worker as before."""
    content_type = None
    for name, value in headers:
        if name == "Content-Encoding" and value.strip().lower() not in ("", "identity"):
            return None
        if name == "Content-Type" and content_type is None:
            content_type = value
    if content_type is None:
        return None  # sniffed in the worker
    kind = kind_of(content_type, body[:1024])
    return kind if kind in UNREAD else None
