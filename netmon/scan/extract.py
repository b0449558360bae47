"""Text a person sees or types, extracted from decoded HTTP bodies, per content type.

``extract_body(data, content_type)`` classifies the body (``kind_of``), decodes its charset
(``netmon.scan.decoding``) and returns an ``Extracted``: one string made of labelled segments joined by a
newline, so that a match offset still points into the text that was scanned and ``label_at(offset)``
says which part (title, alt text, a JSON key, a form field) it came from.

Kinds: html (visible text, <title>, alt text, input values and placeholders; never script, style,
template, noscript or markup), xml, json (string values, recursively), ndjson, sse (server-sent events;
AI-chat token streams are joined into the answer the pupil saw), text, form (urlencoded fields),
multipart (text fields; file parts skipped), binary and code (skipped, counted).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

import numpy as np
from selectolax.lexbor import LexborHTMLParser

from netmon.scan.decoding import (
    DEFAULT_BODY_CAP,
    codec_for,
    decode_text,
    decompress,
    detect_charset,
    header_charset,
)

SEP = "\n"

#: Skip reasons this module can report (ScanStats.skipped).
REASONS = (
    "binary-type",  # images, media, fonts, archives, octet-stream, or bytes that are not text
    "code-type",  # CSS and JavaScript: not text a person reads
    "unsupported-type",  # a multipart or other type netmon does not read
    "multipart-file",  # a file part of a multipart upload (not scanned as text)
    "bad-json",  # JSON that could not be parsed at all (string literals were still scanned)
    "deep-html",  # HTML nested too deep to parse as a tree: its text was extracted crudely
    "too-many-parts",  # a multipart body with more than MAX_FIELDS parts: the rest was not read
)

_HTML = {"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"}
_SSE = {"text/event-stream"}
_NDJSON = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-seq",
}
_CODE = {
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "text/ecmascript",
    "application/wasm",
    "text/x-component",
    "application/manifest+json",
}
_BINARY_PREFIX = ("image/", "audio/", "video/", "font/", "model/", "application/font", "application/x-font")
_BINARY = {
    "application/octet-stream",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-protobuf",
    "application/protobuf",
    "application/grpc",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/x-shockwave-flash",
    "application/vnd.ms-fontobject",
    "application/x-tar",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/java-archive",
    "application/x-bittorrent",
    "application/dns-message",
    "application/ocsp-response",
    "application/pkix-crl",
    "application/x-x509-ca-cert",
    "application/x-apple-diskimage",
    "application/vnd.android.package-archive",
}
_TEXTLIKE_APP = {
    "application/x-www-form-urlencoded": "form",
    "multipart/form-data": "multipart",
    "application/xml": "xml",
    "application/graphql": "text",
    "application/x-yaml": "text",
    "application/yaml": "text",
    "application/rtf": "text",
    "application/x-subrip": "text",
}

#: Fields never scanned or stored, whatever they contain (credentials and tokens).
_SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|csrf|otp|captcha|__viewstate|__eventvalidation|"
    r"authenticity|api[_-]?key|credential|session",
    re.I,
)
#: Values that are machine data, not words: long runs without spaces (ids, base64, URLs).
_BLOB_LEN = 120


def media_type(content_type: str | None) -> str:
    """``"Text/HTML; charset=utf-8"`` -> ``"text/html"``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


_NOT_CONTROL = bytes(b for b in range(256) if not (b < 9 or 13 < b < 32))


def _looks_binary(head: bytes) -> bool:
    """More than 2% control bytes (NUL, ESC...; not tab, CR, LF, FF) in the first bytes: not text."""
    if not head or head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM is text
        return False
    return len(head.translate(None, _NOT_CONTROL)) > len(head) // 50


def _sniff_kind(data: bytes) -> str:
    head = data[:1024]
    if _looks_binary(head):
        return "binary"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(
        (
            b"<!doctype html",
            b"<html",
            b"<head",
            b"<body",
            b"<div",
            b"<p",
            b"<!--",
            b"<title",
            b"<meta",
            b"<table",
            b"<h1",
        )
    ):
        return "html"
    if start.startswith(b"<?xml") or start.startswith(b"<rss") or start.startswith(b"<feed"):
        return "xml"
    if start.startswith((b"{", b"[")):
        return "json"
    if start.startswith((b"data:", b"event:", b"id:")) or b"\ndata:" in head:
        return "sse"
    return "text"


def kind_of(content_type: str | None, data: bytes = b"") -> str:
    """Classify a body: html, xml, json, ndjson, sse, text, form, multipart, code, binary, unsupported."""
    mt = media_type(content_type)
    if mt in _HTML:
        kind = "html"
    elif mt in _SSE:
        kind = "sse"
    elif mt in _NDJSON:
        kind = "ndjson"
    elif mt in _CODE:
        return "code"
    elif mt == "application/json" or mt == "text/json" or mt.endswith("+json") or mt == "application/x-json":
        kind = "json"
    elif mt in _TEXTLIKE_APP:
        kind = _TEXTLIKE_APP[mt]
    elif mt == "text/xml" or mt.endswith("+xml"):
        kind = "xml"
    elif mt.startswith("text/"):
        kind = "text"
    elif mt.startswith(_BINARY_PREFIX) or mt in _BINARY:
        return "binary"
    elif mt.startswith("multipart/"):
        return "unsupported"
    elif mt.startswith("application/vnd.") and not (mt.endswith("json") or mt.endswith("xml")):
        return "binary"
    else:
        kind = _sniff_kind(data)
    utf16 = "utf-16" in (content_type or "").lower()  # NUL bytes are expected then
    if kind in ("html", "xml", "text", "json") and not utf16 and _looks_binary(data[:1024]):
        return "binary"  # a server lying about its content type
    return kind


@dataclass(frozen=True, slots=True)
class Extracted:
    """Text made of labelled segments joined by ``SEP``; offsets index ``text``."""

    text: str
    starts: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    kind: str = ""
    skipped: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text

    def __contains__(self, words: str) -> bool:
        return words in self.text

    def label_at(self, offset: int) -> str:
        """The label of the segment holding ``offset`` ("" when there are no segments)."""
        i = bisect_right(self.starts, offset) - 1
        return self.labels[i] if i >= 0 else ""

    def segments(self) -> Iterator[tuple[str, str]]:
        """(label, text) of every segment, in order."""
        for i, start in enumerate(self.starts):
            end = self.starts[i + 1] - len(SEP) if i + 1 < len(self.starts) else len(self.text)
            yield self.labels[i], self.text[start:end]


def join(parts: Iterable[tuple[str, str]], kind: str = "", skipped: Iterable[str] = ()) -> Extracted:
    """Join (label, text) parts with ``SEP`` into one ``Extracted``; empty parts are dropped."""
    starts: list[int] = []
    labels: list[str] = []
    texts: list[str] = []
    pos = 0
    for label, text in parts:
        if not text or text.isspace():
            continue
        starts.append(pos)
        labels.append(label)
        texts.append(text)
        pos += len(text) + len(SEP)
    return Extracted(SEP.join(texts), tuple(starts), tuple(labels), kind, tuple(skipped))


# ---------------------------------------------------------------------------------------------------
# HTML

#: Elements whose content is never shown as text.
HIDDEN_TAGS = ["script", "style", "template", "noscript"]
_FORM_TEXT = "img[alt], input[value], input[placeholder], textarea[placeholder], area[alt]"
_NOT_SHOWN_INPUT = {"hidden", "password", "file", "checkbox", "radio", "color", "range", "image"}


#: Block containers that the HTML parser must search its open-element stack for at every new one: a
#: page nesting thousands of them unclosed makes parsing quadratic (16,000 <div>: 2 s; 400,000: hours).
_STACK_SEARCHING = (
    "div",
    "section",
    "article",
    "aside",
    "nav",
    "header",
    "footer",
    "main",
    "blockquote",
    "center",
    "fieldset",
    "figure",
    "figcaption",
    "details",
    "summary",
    "dialog",
    "address",
    "dir",
    "menu",
    "ul",
    "ol",
    "dl",
    "hgroup",
    "pre",
    "listing",
    "search",
)
#: Most unclosed block containers parsed as a tree; deeper pages get the crude, linear extraction.
MAX_HTML_DEPTH = 3000


def too_deep(html: str | bytes) -> bool:
    """True when ``html`` may nest more than MAX_HTML_DEPTH unclosed block containers (cheap check)."""
    # Start tags minus end tags is an upper bound of the depth; nearly every page stops here.
    if isinstance(html, str):
        lt = html.count("<")
        if lt <= MAX_HTML_DEPTH or lt - 2 * html.count("</") <= MAX_HTML_DEPTH:
            return False
        data = html.encode("utf-8", "replace")
    else:
        # numpy counts ~5x faster than bytes.count: this check runs on every page.
        arr = np.frombuffer(html, dtype=np.uint8)
        lt_mask = arr == 60  # "<"
        lt = int(np.count_nonzero(lt_mask))
        if (
            lt <= MAX_HTML_DEPTH
            or lt - 2 * int(np.count_nonzero(lt_mask[:-1] & (arr[1:] == 47))) <= MAX_HTML_DEPTH
        ):
            return False
        data = html
    low = data.lower()
    depth = 0
    for tag in _STACK_SEARCHING:
        depth += low.count(b"<" + tag.encode()) - low.count(b"</" + tag.encode())
    return depth > MAX_HTML_DEPTH


_RAW_OPEN = re.compile(r"<(script|style|template|noscript)\b|<!--", re.I)
_TAG = re.compile(r"<[^<>]*>")  # stops at the next "<": linear even on "<<<<..."


def _drop_raw_text(text: str) -> str:
    """Remove script/style/template/noscript elements and comments in one linear pass."""
    low = text.lower()
    out: list[str] = []
    pos = 0
    while (m := _RAW_OPEN.search(text, pos)) is not None:
        out.append(text[pos : m.start()])
        closer = "-->" if m.group(1) is None else f"</{m.group(1).lower()}"
        end = low.find(closer, m.end())
        if end == -1:
            return "".join(out)  # unterminated: the rest is not shown either
        close = low.find(">", end)
        pos = len(text) if close == -1 else close + 1
    out.append(text[pos:])
    return "".join(out)


def crude_html_text(html: str | bytes) -> Extracted:
    """Linear fallback for pathological pages: drop raw-text elements and tags, decode references."""
    from html import unescape

    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    text = _TAG.sub("\n", _drop_raw_text(text))
    return join([("body", unescape(text))], "html", ("deep-html",))


def html_text(html: str | bytes) -> Extracted:
    """Visible text of an HTML document: <title>, body text (one line per text node), alt texts,
    input values and placeholders. Scripts, styles, templates, noscript, comments and markup are not
    included; character references are decoded. Bytes are read as UTF-8."""
    if too_deep(html):
        return crude_html_text(html)
    tree = LexborHTMLParser(html)
    tree.strip_tags(HIDDEN_TAGS)
    parts: list[tuple[str, str]] = []
    head = tree.head  # <title> belongs there; one in <body> is part of the body text anyway
    title = head.css_first("title") if head is not None else None
    if title is not None:
        parts.append(("title", title.text(separator=" ").strip()))
    body = tree.body
    if body is not None:
        parts.append(("body", body.text(separator=SEP, skip_empty=True)))
    seen: set[int] = set()
    for node in tree.css(_FORM_TEXT):
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        attrs = node.attributes
        if node.tag in ("img", "area"):
            parts.append(("alt", attrs.get("alt") or ""))
            continue
        if node.tag == "input" and (attrs.get("type") or "text").lower() in _NOT_SHOWN_INPUT:
            continue
        if _SECRET_NAME.search(attrs.get("name") or ""):
            continue
        parts.append(("input", attrs.get("value") or ""))
        parts.append(("placeholder", attrs.get("placeholder") or ""))
    return join(parts, "html")


def xml_text(xml: str) -> Extracted:
    """Text content of an XML document (RSS, Atom, SVG text...): CDATA kept, markup dropped."""
    # RSS descriptions hold HTML, shown rendered: drop the CDATA markers (linear, unlike a regex)
    xml = xml.replace("<![CDATA[", "").replace("]]>", "")
    if too_deep(xml):
        return crude_html_text(xml)
    tree = LexborHTMLParser(xml)
    tree.strip_tags(HIDDEN_TAGS)
    root = tree.root
    text = root.text(separator=SEP, skip_empty=True) if root is not None else ""
    return join([("xml", text)], "xml")


# ---------------------------------------------------------------------------------------------------
# JSON


def _is_blob(s: str) -> bool:
    if s.startswith(("http://", "https://", "data:", "blob:")) and " " not in s:
        return True
    return len(s) > _BLOB_LEN and " " not in s


def json_strings(value: object, label: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) for every string value in a parsed JSON document, depth first, in order.

    Keys named like credentials are skipped, and so are machine blobs (URLs, ids, base64)."""
    stack: list[tuple[str, object]] = [(label, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, str):
            if item and not _is_blob(item):
                yield key, item
        elif isinstance(item, dict):
            stack.extend(
                (k, v)
                for k, v in reversed(list(item.items()))
                if not (isinstance(v, str) and _SECRET_NAME.search(k))
            )
        elif isinstance(item, list):
            stack.extend((key, v) for v in reversed(item))


_STRING_LITERAL = re.compile(r'"([^"\\\n]*(?:\\.[^"\\\n]*)*)(?:"(\s*:)?|$)')  # unrolled: linear


def _literals(text: str) -> Iterator[tuple[str, str]]:
    """String values of broken or truncated JSON, in order (keys left out, a cut-off last one kept)."""
    for m in _STRING_LITERAL.finditer(text):
        if m.group(2) is not None:
            continue
        try:
            s = json.loads(f'"{m.group(1)}"')
        except ValueError:
            continue
        if s and not _is_blob(s):
            yield "", s


def _loads(text: str) -> tuple[object, bool]:
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


_XSSI = re.compile(r"^\s*(?:\)\]\}'|while\s*\(1\);|for\s*\(;;\);)\s*")


def json_text(text: str) -> Extracted:
    """String values of a JSON document (anti-XSSI prefixes removed); falls back to NDJSON, then to
    the string literals of broken or truncated JSON (counted as ``bad-json``)."""
    text = _XSSI.sub("", text, count=1)
    value, ok = _loads(text)
    if ok:
        return join(json_strings(value), "json")
    if "\n" in text.strip():
        return ndjson_text(text)
    return join(_literals(text), "json", ("bad-json",))


def ndjson_text(text: str) -> Extracted:
    """Newline-delimited JSON: AI-chat token streams are joined, other lines' strings listed."""
    lines = [line for line in text.splitlines() if line.strip()]
    return _stream(lines, "ndjson")


# ---------------------------------------------------------------------------------------------------
# Streams (server-sent events, NDJSON): AI-chat token deltas joined into the answer


def _first(items: object) -> object:
    return items[0] if isinstance(items, list) and items else None


def _get(obj: object, *path: str | int) -> object:
    for key in path:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and len(obj) > key else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def token_of(event: object) -> str | None:
    """The text delta carried by one AI-chat stream event, for the common shapes:
    OpenAI chat/completions and Responses, Anthropic, Gemini, ChatGPT web (patch ops), Hugging Face TGI,
    Ollama, Cohere and plain ``{"text"|"token"|"delta"|"content": ...}`` events. None if not a token."""
    if not isinstance(event, dict):
        return None
    choice = _first(event.get("choices"))
    if isinstance(choice, dict):
        for path in (("delta", "content"), ("text",), ("message", "content"), ("delta", "text")):
            val = _get(choice, *path)
            if isinstance(val, str):
                return val
        return ""  # a choice with no text (role or finish event)
    delta = event.get("delta")
    if isinstance(delta, str):
        return delta  # OpenAI Responses "response.output_text.delta"
    if isinstance(delta, dict):
        for key in ("text", "content", "partial_json"):
            if isinstance(delta.get(key), str):
                return str(delta[key]) if key != "partial_json" else None
    parts = _get(event, "candidates", 0, "content", "parts")
    if isinstance(parts, list):
        return "".join(
            p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    # ChatGPT web: {"p": "/message/content/parts/0", "o": "append", "v": "..."} or {"v": "..."}
    v = event.get("v")
    if isinstance(v, str) and set(event) <= {"p", "o", "v", "c"}:
        return v if event.get("o", "append") == "append" else None
    if isinstance(v, list) and event.get("o") == "patch":
        return "".join(
            op.get("v", "")
            for op in v
            if isinstance(op, dict)
            and op.get("o") == "append"
            and isinstance(op.get("v"), str)
            and "content/parts" in str(op.get("p", ""))
        )
    for path in (
        ("token", "text"),
        ("message", "content"),
        ("response",),
        ("completion",),
        ("text",),
        ("token",),
        ("content",),
    ):
        val = _get(event, *path)
        if isinstance(val, str):
            if path == ("token", "text") and _get(event, "token", "special") is True:
                return ""
            return val
    content = _get(event, "message", "content", "parts")
    if isinstance(content, list) and content and isinstance(content[0], str):
        return content[0]  # ChatGPT web (older): the whole answer so far, each event
    return None


#: Keys of stream events that hold protocol metadata, not words.
_STREAM_METADATA = {
    "type",
    "id",
    "model",
    "role",
    "object",
    "event",
    "finish_reason",
    "stop_reason",
    "status",
    "conversation_id",
    "message_id",
    "parent_id",
}


class _Answer:
    """Accumulates deltas; recognises streams that resend the whole answer so far each time."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, token: str) -> None:
        if len(self.text) >= 4 and len(token) > len(self.text) and token.startswith(self.text):
            self.text = token  # cumulative stream
        else:
            self.text += token


#: Stream events parsed as JSON per body; later ones are scanned as they are.
MAX_EVENTS = 20_000


def _stream(payloads: Iterable[str], kind: str) -> Extracted:
    answer = _Answer()
    other: list[str] = []
    for n, payload in enumerate(payloads):
        data = payload.strip()
        if not data or data == "[DONE]":
            continue
        if n >= MAX_EVENTS:
            other.append(data)
            continue
        if data[0] in "{[":
            value, ok = _loads(data)
            if ok:
                token = token_of(value)
                if token is not None:
                    answer.add(token)
                else:
                    other.extend(s for k, s in json_strings(value) if k not in _STREAM_METADATA)
                continue
        if kind == "sse":
            answer.add(payload)  # plain-text token streams
        else:
            other.append(payload)
    return join([("answer", answer.text), ("events", SEP.join(other))], kind)


def sse_events(text: str) -> Iterator[str]:
    """The data of each server-sent event (multi-line data joined by newlines)."""
    data: list[str] = []
    for line in text.splitlines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def sse_text(text: str) -> Extracted:
    """Server-sent events: the answer an AI chat streamed, plus the strings of other events."""
    return _stream(sse_events(text), "sse")


_AI_SDK_LINE = re.compile(r'^0:(".*")\s*$', re.M)


def plain_text(text: str) -> Extracted:
    """text/plain; also the Vercel AI SDK data stream (``0:"token"`` lines) joined into its answer."""
    if text.startswith("0:"):
        tokens = []
        for m in _AI_SDK_LINE.finditer(text):
            value, ok = _loads(m.group(1))
            if ok and isinstance(value, str):
                tokens.append(value)
        if tokens:
            return join([("answer", "".join(tokens))], "text")
    return join([("text", text)], "text")


# ---------------------------------------------------------------------------------------------------
# Request bodies: forms, multipart


#: Form fields and multipart parts read one by one per body.
MAX_FIELDS = 500


def form_fields(text: str, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """(name, value) of an urlencoded form, without credentials, tokens or empty/blob values.

    ``encoding``: the charset of the percent-escapes (a form posts in its page's charset)."""
    fields = []
    pieces = text.split("&", MAX_FIELDS)
    rest = pieces.pop() if len(pieces) > MAX_FIELDS else ""
    pairs = parse_qsl("&".join(pieces), keep_blank_values=False, encoding=encoding, errors="replace")
    for name, value in pairs:
        if _SECRET_NAME.search(name) or _is_blob(value.strip()):
            continue
        fields.append((name, value))
    if rest:  # a form with absurdly many fields: the rest is scanned as one piece
        fields.append(("(more fields)", unquote_plus(rest, encoding, errors="replace")))
    return fields


_DISPOSITION_PARAM = re.compile(r';\s*([a-z*]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.I)


def _disposition(value: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _DISPOSITION_PARAM.finditer(value)
    }


#: Longest part header (or Content-Type) read, in bytes.
_MAX_HEADER = 8192


def multipart_fields(data: bytes, content_type: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """Text fields of a multipart/form-data body as (name, text) and skip reasons (file parts)."""
    params = _disposition(";" + (content_type or "")[:_MAX_HEADER].split(";", 1)[-1])
    boundary = params.get("boundary")
    if not boundary:
        return [], ["unsupported-type"]
    skipped: list[str] = []
    fields: list[tuple[str, str]] = []
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    chunks = data.split(delimiter, MAX_FIELDS + 1)
    if len(chunks) > MAX_FIELDS + 1:
        chunks.pop()
        skipped.append("too-many-parts")
    for part in chunks[1:]:
        if part.startswith(b"--"):
            break
        head, sep, body = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = part.lstrip(b"\r\n").partition(b"\n\n")
        body = body.removesuffix(b"\r\n").removesuffix(b"\n")
        headers = {}
        for line in head[:_MAX_HEADER].decode("latin-1").splitlines():  # bounded: the pattern backtracks
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disp = _disposition(headers.get("content-disposition", ""))
        name = disp.get("name", "")
        part_type = headers.get("content-type")
        if "filename" in disp or "filename*" in disp:
            if kind_of(part_type, body[:1024]) not in ("text", "json"):
                skipped.append("multipart-file")
                continue
        if _SECRET_NAME.search(name):
            continue
        text = decode_text(body, part_type or "text/plain; charset=utf-8", document=False).text
        if kind_of(part_type, body[:1024]) == "json":
            fields.extend((f"{name}.{k}" if k else name, s) for k, s in json_text(text).segments())
        elif not _is_blob(text.strip()):
            fields.append((name, text))
    return fields, skipped


# ---------------------------------------------------------------------------------------------------
# Dispatch

_SOCKET_IO = re.compile(r"^\d{1,3}(?=[\[{])")


def message_text(message: str) -> Extracted:
    """A WebSocket text message: JSON (also Socket.IO frames like ``42["chat",{...}]``) or plain text."""
    stripped = _SOCKET_IO.sub("", message.lstrip(), count=1)
    if stripped[:1] in ("{", "["):
        value, ok = _loads(stripped)
        if ok:
            return join(json_strings(value), "json")
    return join([("text", message)], "text")


#: Kinds of body (``kind_of``) and a media type standing for each.
KINDS = {
    "html": "text/html",
    "xml": "application/xml",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "sse": "text/event-stream",
    "text": "text/plain",
    "form": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data",
    "binary": "application/octet-stream",
    "code": "text/javascript",
    "unsupported": "multipart/mixed",
}


def extract_text(content: str | bytes, kind_or_type: str | None = None) -> Extracted:
    """The text of a body, per content type.

    ``content``: decoded text, or body bytes (decompressed; the charset is then detected as a browser
    would). ``kind_or_type``: a kind (``html``, ``json``, ``sse``... see KINDS) or a Content-Type header
    value; None sniffs the content.
    """
    kind = ""
    content_type = kind_or_type
    if kind_or_type is not None and kind_or_type in KINDS:
        kind, content_type = kind_or_type, KINDS[kind_or_type]
    if isinstance(content, bytes | bytearray | memoryview):
        return extract_body(bytes(content), content_type)
    if not kind:
        kind = kind_of(content_type, content[:1024].encode("utf-8", "replace"))
    if kind in ("binary", "code", "unsupported", "multipart"):
        return extract_body(content.encode("utf-8"), content_type)
    if kind == "html":
        return html_text(content)
    if kind == "xml":
        return xml_text(content)
    if kind == "json":
        return json_text(content)
    if kind == "ndjson":
        return ndjson_text(content)
    if kind == "sse":
        return sse_text(content)
    if kind == "form":
        return join(form_fields(content), "form")
    return plain_text(content)


@dataclass(frozen=True, slots=True)
class Body:
    """A body made readable: decompressed bytes (capped), their text and charset, and skip reasons."""

    data: bytes
    text: str
    charset: str
    skipped: tuple[str, ...] = ()


def decode_body(
    body: bytes,
    content_encoding: str | None = None,
    content_type: str | None = None,
    *,
    cap: int = DEFAULT_BODY_CAP,
) -> Body:
    """Raw body bytes -> decompressed (at most ``cap`` bytes, bomb-safe) -> text in its charset.

    Never raises on bad input: problems are skip reasons (``netmon.scan.decoding.REASONS``)."""
    decoded = decompress(body, content_encoding, cap)
    text = decode_text(
        decoded.data, content_type, document=kind_of(content_type, decoded.data) in ("html", "xml")
    )
    return Body(decoded.data, text.text, text.charset, decoded.skipped)


def extract_body(data: bytes, content_type: str | None) -> Extracted:
    """Decoded (decompressed, capped) body bytes -> text, by content type and charset. Never raises
    on bad input: unreadable types come back empty with a skip reason."""
    kind = kind_of(content_type, data)
    if kind == "binary":
        return Extracted("", kind=kind, skipped=("binary-type",))
    if kind == "code":
        return Extracted("", kind=kind, skipped=("code-type",))
    if kind == "unsupported":
        return Extracted("", kind=kind, skipped=("unsupported-type",))
    if kind == "multipart":
        fields, skipped = multipart_fields(data, content_type)
        return join(fields, kind, skipped)
    if kind == "html":
        name, skip, _ = detect_charset(data, content_type)
        if name == "utf-8":
            return html_text(data[skip:])  # lexbor reads UTF-8 bytes itself: no decode and re-encode
        return html_text(data[skip:].decode(name, "replace"))
    if kind == "form":
        encoding = codec_for(header_charset(content_type)) or "utf-8"
        return join(form_fields(data.decode(encoding, "replace"), encoding), "form")
    if kind in ("json", "ndjson", "sse") and header_charset(content_type) is None:
        content_type = "text/plain; charset=utf-8"  # these are UTF-8 unless a BOM or header says not
        text = decode_text(data, content_type, document=False).text
    else:
        text = decode_text(data, content_type, document=kind in ("html", "xml")).text
    return extract_text(text, kind)
