"""One scan job: everything between a flow's bytes and the matcher, run in a worker process.

The proxy adapter copies what it needs from a flow (or one WebSocket message) into a ``ScanJob`` —
plain, picklable data — and a worker calls ``scan_job(job, matcher)``, which returns a ``ScanResult``:

* ``search``: the terms of a search URL (``netmon.scan.search_terms``), label = engine;
* ``form``: urlencoded and multipart text fields of the request, one finding per field (label = name);
* ``chat``: JSON request bodies (AI-chat prompts, chat messages) and server-sent-event responses;
* ``page``: HTML, XML, JSON and text responses (label = kind);
* ``websocket``: one message, either way (label ``ws client->server`` / ``ws server->client``).

A page body (source ``page``) is then quieted by the overlay's host-scoped lines for the job's host
and URL path (``netmon.scan.scopes``): the host is the one the proxy gives the job, held to where the
request really went. Nothing the pupil typed (search terms, form fields, chat prompts, WebSocket messages
a device sends) and no streamed chat reply is ever quieted by a scope. Only findings with hits are
returned. When there are hits, a sanitised copy of the decoded response
(no scripts, event handlers, frames, objects or external loads), zstd-compressed and capped, rides
along as ``snapshot``. ``stats`` counts bytes scanned and skip reasons, never content. Bad input never
raises: it becomes a skip reason; only a programming error can escape (the proxy fails open).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import zstandard

from netmon.hosts import is_ip
from netmon.ops import counters
from netmon.scan.decoding import DEFAULT_BODY_CAP, decode_text, decompress
from netmon.scan.extract import UNREAD, Body, Extracted, extract, kind_of, media_type, message_text, read_body
from netmon.scan.findings import FlowContext, Hit, ScanResult, ScanStats, TextFinding, pickled_as_tuple
from netmon.scan.scopes import Quieting, quieting_for
from netmon.scan.search_terms import engines, search_query
from netmon.scan.signal import Scores, weigh
from netmon.scan.site_scope import page_path
from netmon.scan.snapshot import DEFAULT_SNAPSHOT_CAP, make_snapshot

log = logging.getLogger(__name__)

#: Compressed bytes read to judge a body whose label says image or script (its first ~1 KB of text).
SNIFF_RAW = 16 * 1024
#: A snapshot is kept only when some hit is at least this severe: severity 1 is the topic alone (an
#: encyclopaedia page), which the captured text already explains.
SNAPSHOT_MIN_SEVERITY = 2

#: Most hits kept per piece of text (the most severe); the rest are counted as "hit-cap".
MAX_HITS = 200
#: CPU seconds one job may use before the parts it has not begun are skipped (``cpu-budget``). The
#: riskiest parts go first (search terms, then the request body, then the response), so a body that
#: is slow to read never hides a search. A single text is matched whole: with the per-phrase cap in
#: the matcher, 2 MB of text costs well under a second however dense its hits.
DEFAULT_CPU_BUDGET = 2.0
#: Raw (still compressed) bytes looked at per body: a decoder never reads further than this.
RAW_CAP_FACTOR = 4

#: Reasons this module adds to those of netmon.scan.decoding and netmon.scan.extract.
REASONS = (
    "no-body-status",  # 1xx, 204, 304 responses
    "binary-message",  # a binary WebSocket message that is not text
    "extract-error",  # a parser failed on this body (logged with the host, never content)
    "hit-cap",  # more than MAX_HITS hits in one text: the most severe were kept
    "cpu-budget",  # the job used its CPU time (``ScanJob.cpu_budget``): the rest of it was not scanned
)

# Compile the search-engine table now, at start-up (and before a worker pool forks), never in a scan.
engines()

_NO_BODY = {204, 304}
_NOTEWORTHY = {
    "decompression-bomb",
    "bad-encoding",
    "nested-encoding",
    "deep-html",
    "too-many-parts",
    "extract-error",
}
_WS_LABEL = {True: "ws client->server", False: "ws server->client"}

Headers = tuple[tuple[str, str], ...] | Mapping[str, str]


class SupportsScan(Protocol):
    """What scan_job needs of a matcher (``netmon.scan.matching.Matcher``): ``limit`` keeps at most that
    many hits of any one phrase (the earliest), so that a text dense with hits costs its size, not its
    number of hits."""

    def scan(self, text: str, limit: int | None = None, grammar: bool = True) -> tuple[Hit, ...]: ...


@pickled_as_tuple(out_of_band=("request_body", "response_body", "ws_message"))
@dataclass(frozen=True, slots=True)
class ScanJob:
    """Everything one scan needs, copied out of a flow: plain data, safe to pickle to a worker.

    Bodies are raw (still content-encoded). For a WebSocket message set ``ws_message`` (and
    ``ws_from_client``); the HTTP fields then only give context.
    """

    context: FlowContext
    request_method: str = "GET"
    request_url: str = ""
    request_headers: Headers = ()
    request_body: bytes = b""
    response_status: int | None = None
    response_headers: Headers = ()
    response_body: bytes | None = None
    ws_message: bytes | str | None = None
    ws_from_client: bool = True
    body_cap: int = DEFAULT_BODY_CAP
    snapshot_cap: int = DEFAULT_SNAPSHOT_CAP
    snapshot: bool = True  # attach a sanitised snapshot of the response when there are hits
    cpu_budget: float = DEFAULT_CPU_BUDGET  # CPU seconds; parts not begun by then are skipped

    @classmethod
    def for_http(
        cls,
        context: FlowContext,
        request_headers: Headers = (),
        request_body: bytes = b"",
        response_status: int | None = None,
        response_headers: Headers = (),
        response_body: bytes | None = None,
        max_bytes: int = DEFAULT_BODY_CAP,
        snapshot_max_bytes: int = DEFAULT_SNAPSHOT_CAP,
    ) -> ScanJob:
        """A job for one HTTP flow; method and URL come from ``context``. Bodies are raw (still encoded)."""
        return cls(
            context=context,
            request_method=context.method,
            request_url=context.url,
            request_headers=request_headers,
            request_body=request_body,
            response_status=response_status,
            response_headers=response_headers,
            response_body=response_body,
            body_cap=max_bytes,
            snapshot_cap=snapshot_max_bytes,
        )

    @classmethod
    def for_websocket(
        cls,
        context: FlowContext,
        content: bytes | str,
        is_text: bool = True,
        from_client: bool = True,
        max_bytes: int = DEFAULT_BODY_CAP,
    ) -> ScanJob:
        """A job for one WebSocket message (text frames are UTF-8; binary ones are sniffed)."""
        if is_text and isinstance(content, bytes):
            content = content[:max_bytes].decode("utf-8", "replace")
        return cls(
            context=context,
            request_method=context.method,
            request_url=context.url,
            ws_message=content,
            ws_from_client=from_client,
            body_cap=max_bytes,
        )


def header(headers: Headers, name: str) -> str | None:
    """First value of header ``name`` (case-insensitive) in a tuple of pairs or a mapping."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lname = name.lower()
    for key, value in items:
        if key.lower() == lname:
            return value
    return None


class _Scan:
    """The state of one scan_job call."""

    def __init__(self, job: ScanJob, matcher: SupportsScan) -> None:
        self.job = job
        self.matcher = matcher
        self.findings: list[TextFinding] = []
        self.typed: list[tuple[str, str, str]] = []  # (source, label, text) the pupil typed: for the model
        self.pupil_side = True
        self.skipped: list[str] = []
        self.scanned = 0
        self.deadline = time.process_time() + job.cpu_budget
        # a matcher carries its library (netmon.scan.matching.Matcher); a bare one has no scoped lines
        self.quieting: Quieting | None = quieting_for(getattr(matcher, "library", None))

    def skip(self, reasons: tuple[str, ...] | list[str]) -> None:
        for reason in reasons:
            self.skipped.append(reason)
            # Unusual skips are worth a line (host only: never a URL, never content); routine ones
            # (binary types, caps) are only counted.
            level = logging.INFO if reason in _NOTEWORTHY else logging.DEBUG
            log.log(level, "scan skip %s (host %s)", reason, self.job.context.host)

    def over_budget(self) -> bool:
        """True (and counted once) when this job has used its CPU time: the rest of it is not scanned."""
        if time.process_time() < self.deadline:
            return False
        if "cpu-budget" not in self.skipped:
            self.skip(("cpu-budget",))
        return True

    def match(self, source: str, text: str, label: str = "") -> None:
        if not text or self.over_budget():
            return
        if self.pupil_side:
            self.typed.append((source, label, text))
        # At most MAX_HITS + 1 hits of any one phrase come back (the earliest): enough to keep exactly
        # the MAX_HITS most severe below, and to know whether the cap was reached.
        # the intent grammar reads what the pupil typed; page bodies are other people's words
        hits = self.matcher.scan(text, limit=MAX_HITS + 1, grammar=self.pupil_side)
        if hits and source == "page" and not self.pupil_side and self.quieting is not None:
            # the school quieted these words on this site's pages (never on what a pupil typed)
            context = self.job.context
            hits = self.quieting.quiet(
                hits, text, context.host, page_path(self.job.request_url or context.url)
            )
        if len(hits) > MAX_HITS:
            # A page repeating a phrase thousands of times is one incident, not thousands of rows:
            # keep the most severe hits (earliest first among equals), in text order.
            kept = sorted(hits, key=lambda h: (-h.severity, h.start))[:MAX_HITS]
            hits = tuple(sorted(kept, key=lambda h: (h.start, -h.severity, h.end, h.phrase)))
            self.skip(("hit-cap",))
        if hits:
            self.findings.append(TextFinding(source=source, text=text, hits=hits, label=label))

    def match_segments(self, source: str, extracted: Extracted) -> None:
        for label, text in extracted.segments():
            self.match(source, text, label)

    def body(self, data: bytes, headers: Headers, json_text: bool = False) -> Body | None:
        """Decompress, classify and find the charset of one body, once; None (with skips counted) when
        there is nothing to read. ``json_text``: a text body that starts like JSON is JSON (fetch()
        sends a string body as text/plain)."""
        content_type = header(headers, "content-type")
        encoding = header(headers, "content-encoding")
        kind = kind_of(content_type, data[:1024] if not encoding else b"")
        if kind in UNREAD and encoding and kind != "unsupported":
            # a compressed body labelled as an image or a script: judge it by its first decompressed
            # bytes, so that a page gzipped and labelled image/png cannot hide from the scan
            kind = kind_of(content_type, decompress(data[:SNIFF_RAW], encoding, 1024).data[:1024])
        if kind in UNREAD:
            self.skip((f"{kind}-type",))
            return None
        raw_cap = self.job.body_cap * RAW_CAP_FACTOR
        if len(data) > raw_cap:
            self.skip(("body-cap",))
            data = data[:raw_cap]
        decoded = decompress(data, encoding, self.job.body_cap)
        self.skip(decoded.skipped)
        self.scanned += len(decoded.data)
        if not decoded.data:
            return None
        known = kind if not encoding and not decoded.layers else None  # same bytes: already classified
        if json_text and (known or kind_of(content_type, decoded.data)) == "text":
            if decoded.data.lstrip()[:1] in (b"{", b"["):
                return read_body(decoded.data, "application/json", kind="json")
        return read_body(decoded.data, content_type, kind=known)

    def extract(self, body: Body) -> Extracted | None:
        if self.over_budget():
            return None
        try:
            extracted = extract(body)
        except (ValueError, UnicodeError, LookupError, RecursionError, MemoryError) as exc:
            log.warning(
                "scan: cannot extract text (host %s, type %s): %s",
                self.job.context.host,
                media_type(body.content_type),
                type(exc).__name__,
            )
            self.skip(("extract-error",))
            return None
        self.skip(extracted.skipped)
        return extracted

    # -- parts of a flow, the riskiest first --------------------------------------------------------
    def search(self) -> None:
        job = self.job
        url = job.request_url or job.context.url
        if not url:
            return
        host = job.context.host if job.context.host and not is_ip(job.context.host) else None
        found = search_query(url, host=host)
        if found is not None:
            engine, query = found
            self.scanned += len(query.encode("utf-8", "replace"))
            self.match("search", query, engine)

    def request(self) -> None:
        job = self.job
        if not job.request_body:
            return
        body = self.body(job.request_body, job.request_headers, json_text=True)
        if body is None:
            return
        extracted = self.extract(body)
        if extracted is None:
            return
        if extracted.kind in ("form", "multipart"):
            self.match_segments("form", extracted)
        elif extracted.kind in ("json", "ndjson"):
            self.match("chat", extracted.text, "json")
        else:
            self.match("form", extracted.text, "body")

    def response(self) -> Body | None:
        job = self.job
        self.pupil_side = False  # what a site sent: the library's alone
        if job.response_body is None or not job.response_body:
            return None
        status = job.response_status or 200
        if status < 200 or status in _NO_BODY or job.request_method.upper() == "HEAD":
            self.skip(("no-body-status",))
            return None
        body = self.body(job.response_body, job.response_headers)
        if body is None:
            return None
        extracted = self.extract(body)
        if extracted is None:
            return None
        self.match("chat" if extracted.kind == "sse" else "page", extracted.text, extracted.kind)
        return body

    def websocket(self) -> None:
        job = self.job
        message = job.ws_message
        if isinstance(message, bytes):
            if len(message) > job.body_cap:
                self.skip(("body-cap",))
                message = message[: job.body_cap]
            if kind_of(None, message[:1024]) == "binary":
                self.skip(("binary-message",))
                return
            message = decode_text(message, document=False).text
        elif message is not None and len(message) > job.body_cap:
            self.skip(("body-cap",))
            message = message[: job.body_cap]
        if message:
            self.pupil_side = bool(job.ws_from_client)
            self.scanned += len(message.encode("utf-8", "replace"))
            self.match("websocket", message_text(message).text, _WS_LABEL[job.ws_from_client])

    def result(self, snapshot: tuple[bytes, str] | None = None) -> ScanResult:
        return ScanResult(
            context=self.job.context,
            findings=tuple(self.findings),
            stats=ScanStats(bytes_scanned=self.scanned, skipped=tuple(self.skipped)),
            snapshot=snapshot[0] if snapshot else None,
            snapshot_type=snapshot[1] if snapshot else None,
        )


def scan_job(job: ScanJob, matcher: SupportsScan, model: Scores | None = None) -> ScanResult:
    """Scan one flow or WebSocket message: findings (with hits only), stats, and a snapshot if hits.
    ``model``: the learned second signal for what the pupil typed (:mod:`netmon.scan.signal`)."""
    scan = _Scan(job, matcher)
    if job.ws_message is not None:
        scan.websocket()
        if model is not None:
            scan.findings = _graded(matcher, scan.typed, weigh(model, scan.typed, scan.findings))
        return scan.result()
    scan.search()
    scan.request()
    if model is not None:
        scan.findings = _graded(matcher, scan.typed, weigh(model, scan.typed, scan.findings))
    response = scan.response()
    snapshot = None
    worth_keeping = any(h.severity >= SNAPSHOT_MIN_SEVERITY for f in scan.findings for h in f.hits)
    if worth_keeping and response is not None and job.snapshot:
        try:
            snapshot = make_snapshot(response, job.snapshot_cap)
        except (ValueError, UnicodeError, zstandard.ZstdError) as exc:
            log.warning("scan: no snapshot (host %s): %s", job.context.host, type(exc).__name__)
    return scan.result(snapshot)


def _graded(
    matcher: SupportsScan, typed: list[tuple[str, str, str]], findings: list[TextFinding]
) -> list[TextFinding]:
    """The grave lines again over what the pupil typed, once the model has raised or added hits (the
    matcher applied them to the library's own hits)."""
    gravity = getattr(matcher, "gravity", None)
    if not gravity:
        return findings
    keys = {(source, text) for source, _, text in typed}
    return [
        replace(f, hits=gravity.lift(f.text, f.hits)) if (f.source, f.text) in keys else f for f in findings
    ]


def count_stats(result: ScanResult) -> None:
    """Add one result's work and skips to the process-wide counters. Call it in the proxy process
    (a worker's counters are not the proxy's): ``scan.jobs``, ``scan.bytes``, ``scan.skipped.<reason>``,
    ``scan.hits``."""
    counters.incr("scan.jobs")
    counters.incr("scan.bytes", result.stats.bytes_scanned)
    for reason in result.stats.skipped:
        counters.incr(f"scan.skipped.{reason}")
    if result.findings:
        counters.incr("scan.hits", len(result.hits))
