"""What kind of body this is: html, xml, json, ndjson, sse, text, form, multipart, code, binary or
unsupported, from the Content-Type header and, when that says nothing useful, the first bytes.

A header is not taken at its word when it would hide text: a body labelled as an image, a font, a
download or code whose first bytes are an HTML, XML or JSON document (or, for the binary types, plainly
text with no file signature) is read as what it is, as a page's own script could show it. Without the
first bytes (a compressed body) the header decides."""

from __future__ import annotations

from netmon.scan.decoding import utf16_without_bom

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
    utf16 = utf16_without_bom(head)
    if utf16 is not None:  # sniff its characters, not its bytes
        head = head[: len(head) // 2 * 2].decode(utf16, "replace").encode("utf-8", "replace")
    elif _looks_binary(head):
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


#: First bytes of files that are not text, though they may look like it for a few bytes.
_SIGNATURES = (
    b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"RIFF", b"wOFF", b"wOF2", b"OTTO", b"\x00\x01\x00\x00", b"%PDF",
    b"PK\x03\x04", b"\x1f\x8b", b"BM", b"II*\x00", b"MM\x00*", b"OggS", b"ID3", b"fLaC", b"\x1aE\xdf\xa3",
    b"\x00\x00\x00", b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd", b"AT&T", b"FORM",
)
#: Bytes of plain text a "binary" body must start with before it is read as text.
_MIN_TEXT = 64


def _not_what_it_says(kind: str, data: bytes) -> str | None:
    """The kind a body labelled ``kind`` (binary or code) really is, when its first bytes say it is a
    document (or, for binary, plain text); None when they agree with the label or are absent."""
    head = data[:1024]
    if not head or head.startswith(_SIGNATURES) or _looks_binary(head):
        return None
    sniffed = _sniff_kind(head)
    if sniffed in ("html", "xml") or (kind == "binary" and sniffed in ("json", "sse")):
        return sniffed
    if kind == "binary" and sniffed == "text" and len(head) >= _MIN_TEXT:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not just a character cut at the end of the head
                return None
        return "text"
    return None


def kind_of(content_type: str | None, data: bytes = b"") -> str:
    """Classify a body: html, xml, json, ndjson, sse, text, form, multipart, code, binary, unsupported."""
    kind = _by_header(content_type, data)
    if kind in ("binary", "code") and data:
        return _not_what_it_says(kind, data) or kind
    return kind


def _by_header(content_type: str | None, data: bytes) -> str:
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
    if kind in ("html", "xml", "text", "json") and _looks_binary(data[:1024]):
        # a server lying about its content type, unless this is UTF-16 (NUL bytes are expected then)
        if "utf-16" not in (content_type or "").lower() and utf16_without_bom(data) is None:
            return "binary"
    return kind


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
