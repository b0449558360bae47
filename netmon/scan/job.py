"""One scan job: everything between a flow's bytes and the matcher, run in a worker process.

The proxy adapter copies what it needs from a flow (or one WebSocket message) into a ``ScanJob`` —
plain, picklable data — and a worker calls ``scan_job(job, matcher)``, which returns a ``ScanResult``:

* ``search``: the terms of a search URL (``netmon.scan.search_terms``), label = engine;
* ``form``: urlencoded and multipart text fields of the request, one finding per field (label = name);
* ``chat``: JSON request bodies (AI-chat prompts, chat messages) and server-sent-event responses;
* ``page``: HTML, XML, JSON and text responses (label = kind);
* ``websocket``: one message, either way (label ``ws client->server`` / ``ws server->client``).

Only findings with hits are returned. When there are hits, a sanitised copy of the decoded response
(no scripts, event handlers, frames, objects or external loads), zstd-compressed and capped, rides
along as ``snapshot``. ``stats`` counts bytes scanned and skip reasons, never content. Bad input never
raises: it becomes a skip reason; only a programming error can escape (the proxy fails open).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import zstandard
from selectolax.lexbor import LexborHTMLParser

from netmon.hosts import is_ip
from netmon.ops import counters
from netmon.scan.decoding import DEFAULT_BODY_CAP, decode_text, decompress, detect_charset
from netmon.scan.extract import (
    Extracted,
    crude_html_text,
    extract_body,
    kind_of,
    media_type,
    message_text,
    too_deep,
)
from netmon.scan.findings import FlowContext, Hit, ScanResult, ScanStats, TextFinding, pickled_as_tuple
from netmon.scan.search_terms import engines, search_query

log = logging.getLogger(__name__)

#: A snapshot is kept only when some hit is at least this severe: severity 1 is the topic alone (an
#: encyclopaedia page), which the captured text already explains.
SNAPSHOT_MIN_SEVERITY = 2

#: Largest sanitised snapshot kept, before compression (``netmon_snapshot_max_bytes``).
DEFAULT_SNAPSHOT_CAP = 1024 * 1024
#: Most hits kept per piece of text (the most severe); the rest are counted as "hit-cap".
MAX_HITS = 200
#: Raw (still compressed) bytes looked at per body: a decoder never reads further than this.
RAW_CAP_FACTOR = 4

#: Reasons this module adds to those of netmon.scan.decoding and netmon.scan.extract.
REASONS = (
    "no-body-status",  # 1xx, 204, 304 responses
    "binary-message",  # a binary WebSocket message that is not text
    "extract-error",  # a parser failed on this body (logged with the host, never content)
    "hit-cap",  # more than MAX_HITS hits in one text: the most severe were kept
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
    """What scan_job needs of a matcher (``netmon.scan.matching.Matcher``)."""

    def scan(self, text: str) -> tuple[Hit, ...]: ...


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
        self.skipped: list[str] = []
        self.scanned = 0

    def skip(self, reasons: tuple[str, ...] | list[str]) -> None:
        for reason in reasons:
            self.skipped.append(reason)
            # Unusual skips are worth a line (host only: never a URL, never content); routine ones
            # (binary types, caps) are only counted.
            level = logging.INFO if reason in _NOTEWORTHY else logging.DEBUG
            log.log(level, "scan skip %s (host %s)", reason, self.job.context.host)

    def match(self, source: str, text: str, label: str = "") -> None:
        if not text:
            return
        hits = self.matcher.scan(text)
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

    def body(self, data: bytes, headers: Headers) -> tuple[bytes, str | None, str] | None:
        """Decompress and classify one body; None (with skips counted) when there is nothing to read."""
        content_type = header(headers, "content-type")
        kind = kind_of(content_type, data[:1024] if not header(headers, "content-encoding") else b"")
        if kind in ("binary", "code", "unsupported"):
            self.skip((f"{kind}-type",))
            return None
        raw_cap = self.job.body_cap * RAW_CAP_FACTOR
        if len(data) > raw_cap:
            self.skip(("body-cap",))
            data = data[:raw_cap]
        decoded = decompress(data, header(headers, "content-encoding"), self.job.body_cap)
        self.skip(decoded.skipped)
        self.scanned += len(decoded.data)
        if not decoded.data:
            return None
        return decoded.data, content_type, kind

    def extract(self, data: bytes, content_type: str | None) -> Extracted | None:
        try:
            extracted = extract_body(data, content_type)
        except (ValueError, UnicodeError, LookupError, RecursionError, MemoryError) as exc:
            log.warning(
                "scan: cannot extract text (host %s, type %s): %s",
                self.job.context.host,
                media_type(content_type),
                type(exc).__name__,
            )
            self.skip(("extract-error",))
            return None
        self.skip(extracted.skipped)
        return extracted

    # -- parts of a flow --------------------------------------------------------------------------
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
        got = self.body(job.request_body, job.request_headers)
        if got is None:
            return
        data, content_type, kind = got
        if kind == "text" and data.lstrip()[:1] in (b"{", b"["):
            content_type = "application/json"  # fetch() sends a string body as text/plain
        extracted = self.extract(data, content_type)
        if extracted is None:
            return
        if extracted.kind in ("form", "multipart"):
            self.match_segments("form", extracted)
        elif extracted.kind in ("json", "ndjson"):
            self.match("chat", extracted.text, "json")
        else:
            self.match("form", extracted.text, "body")

    def response(self) -> tuple[bytes, str | None, str] | None:
        job = self.job
        if job.response_body is None or not job.response_body:
            return None
        status = job.response_status or 200
        if status < 200 or status in _NO_BODY or job.request_method.upper() == "HEAD":
            self.skip(("no-body-status",))
            return None
        got = self.body(job.response_body, job.response_headers)
        if got is None:
            return None
        data, content_type, _ = got
        extracted = self.extract(data, content_type)
        if extracted is None:
            return None
        self.match("chat" if extracted.kind == "sse" else "page", extracted.text, extracted.kind)
        return data, content_type, extracted.kind

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


def scan_job(job: ScanJob, matcher: SupportsScan) -> ScanResult:
    """Scan one flow or WebSocket message: findings (with hits only), stats, and a snapshot if hits."""
    scan = _Scan(job, matcher)
    if job.ws_message is not None:
        scan.websocket()
        return scan.result()
    scan.search()
    scan.request()
    response = scan.response()
    snapshot = None
    worth_keeping = any(h.severity >= SNAPSHOT_MIN_SEVERITY for f in scan.findings for h in f.hits)
    if worth_keeping and response is not None and job.snapshot:
        data, content_type, kind = response
        try:
            snapshot = make_snapshot(data, content_type, kind, job.snapshot_cap)
        except (ValueError, UnicodeError, zstandard.ZstdError) as exc:
            log.warning("scan: no snapshot (host %s): %s", job.context.host, type(exc).__name__)
    return scan.result(snapshot)


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


# ---------------------------------------------------------------------------------------------------
# Snapshot: what the pupil received, made safe to show to a DSL

#: Elements removed with their content: active content, frames, external loads, metadata.
REMOVED_TAGS = [
    "use",
    "image",
    "script",
    "noscript",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "base",
    "link",
    "meta",
    "portal",
    "audio",
    "video",
    "source",
    "track",
    "template",
]
#: Attributes that load something or navigate by themselves.
_LOADING_ATTRS = {
    "src",
    "srcset",
    "data-src",
    "data-srcset",
    "poster",
    "background",
    "lowsrc",
    "dynsrc",
    "action",
    "formaction",
    "ping",
    "manifest",
    "xlink:href",
    "codebase",
    "archive",
    "longdesc",
    "usemap",
    "http-equiv",
    "integrity",
    "imagesrcset",
    "srcdoc",
}
_DANGEROUS_CSS = re.compile(
    r"url\s*\(|@import|expression\s*\(|image-set\s*\(|-moz-binding|behavior\s*:", re.I
)
#: Lower-cased words that every dangerous CSS construct contains: CSS without any of them is safe as it
#: is, found with str's fast substring search instead of a case-insensitive regex over every character.
_CSS_WORDS = ("url", "@import", "expression", "image-set", "-moz-binding", "behavior")


def _dangerous_css(css: str) -> bool:
    low = css.lower()
    return any(word in low for word in _CSS_WORDS) and _DANGEROUS_CSS.search(low) is not None


# The patterns below run on lexbor's serialisation, which is canonical: every attribute is written
# ` name="value"`, name lower-cased, '"' inside a value escaped. (Text that merely looks like an
# attribute may lose a few characters; nothing is ever added.)
# Each pattern starts with a literal space (lexbor writes exactly one before every attribute), which
# lets the regex engine skip ahead by fast search: ~3x quicker than a leading \s.
# The lookahead lets the engine give up at once on the many spaces in text (a third quicker).
_BAD_ATTR = re.compile(
    r" (?=[o"
    + "".join(sorted({n[0] for n in _LOADING_ATTRS}))
    + r'])(?:on[^\s"=/>]*|'
    + "|".join(sorted(map(re.escape, _LOADING_ATTRS)))
    + r')="[^"]*"'
)
# lexbor writes attribute names in lower case: a case-sensitive ' style="' lets the engine skip ahead.
_BAD_STYLE_ATTR = re.compile(r' style="[^"]*?(?i:' + _DANGEROUS_CSS.pattern + r')[^"]*"')
#: Links kept only when plainly web or relative: any other scheme (javascript:, data:, "jav&#9;ascript:")
#: is dropped.
_NOT_WEB = r'="(?!\s*(?:https?:|mailto:|/|#|\?))[^":]*:[^"]*"'
_BAD_LINK_ATTRS = [re.compile(f" {name}{_NOT_WEB}") for name in ("href", "xlink:href")]
#: SVG animation can set an attribute to a javascript: URL; only checked when such elements exist.
_BAD_ANIMATION_ATTR = re.compile(r" (?:to|from|values)" + _NOT_WEB)
#: Put first in <head>: even if something slipped through, a browser loads nothing.
SNAPSHOT_HEAD = (
    '<meta charset="utf-8">'
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'\">"
    '<meta name="referrer" content="no-referrer">'
)


#: Passes before confusing markup is given up on (a snapshot is then kept as plain text).
_MAX_PASSES = 5


class Unsanitisable(ValueError):
    """Markup that does not settle into a safe form: keep its text instead."""


def _clean_once(html: str | bytes) -> tuple[str, str]:
    """(lexbor's serialisation with active elements removed, the same with bad attributes removed)."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(REMOVED_TAGS)
    for style in tree.css("style"):
        if _dangerous_css(style.text()):
            style.decompose()
    serialised = out = tree.html or ""
    out = _BAD_ATTR.sub("", out)
    if ' style="' in out:
        out = _BAD_STYLE_ATTR.sub("", out)
    for pattern in _BAD_LINK_ATTRS:
        out = pattern.sub("", out)
    if "<animate" in out or "<set" in out:
        out = _BAD_ANIMATION_ATTR.sub("", out)
    return serialised, out


def sanitise_html(html: str | bytes) -> str:
    """HTML without scripts, event handlers, frames, objects or anything that loads by itself.

    Elements are removed by the parser (lexbor); attributes by patterns over its serialisation. Hostile
    markup can make that serialisation ambiguous (attribute names holding quotes), so the result is
    parsed and cleaned again until a pass changes nothing: the HTML returned is exactly lexbor's own
    serialisation of what it parses from it, with nothing left for the patterns to remove, so what a
    browser builds from it is what was checked. Raises ``Unsanitisable`` if that takes too many passes.
    """
    out = html
    for _ in range(_MAX_PASSES):
        serialised, cleaned = _clean_once(out)
        if serialised == cleaned == out:
            return cleaned.replace("<head>", "<head>" + SNAPSHOT_HEAD, 1)
        out = cleaned
    raise Unsanitisable("markup does not settle")


def _cap_utf8(text: str, cap: int) -> bytes:
    data = text.encode("utf-8")
    if len(data) <= cap:
        return data
    return data[:cap].decode("utf-8", "ignore").encode("utf-8")


def make_snapshot(data: bytes, content_type: str | None, kind: str, cap: int) -> tuple[bytes, str] | None:
    """(zstd-compressed bytes, media type before compression) of a decoded response, or None when it
    is not text. HTML is sanitised; other text is kept as UTF-8 text/plain."""
    if kind in ("binary", "code", "unsupported", "multipart", "form"):
        return None
    html: str | bytes
    if kind == "html":
        charset, bom, _ = detect_charset(data, content_type)
        html = (
            data[bom:] if charset == "utf-8" else data[bom:].decode(charset, "replace")
        )  # lexbor reads UTF-8
        if too_deep(html):
            body, media = _cap_utf8(crude_html_text(html).text, cap), "text/plain"  # never parse it as a tree
        else:
            try:
                body, media = _cap_utf8(sanitise_html(html), cap), "text/html"
            except Unsanitisable:  # keep what it says, as text
                body, media = _cap_utf8(crude_html_text(html).text, cap), "text/plain"
    else:
        text = decode_text(data, content_type, document=kind == "xml").text
        body, media = _cap_utf8(text, cap), "text/plain"
    return zstandard.ZstdCompressor(level=3).compress(body), media


def open_snapshot(snapshot: bytes, max_size: int = 64 * 1024 * 1024) -> bytes:
    """Decompress a stored snapshot (for viewers and exports)."""
    return zstandard.ZstdDecompressor().decompress(snapshot, max_output_size=max_size)
