"""Text a person sees or types, extracted from decoded HTTP bodies, per content type.

A body is worked out once (``read_body``: its kind and charset, from the header, the document and its
bytes) into a ``Body``; ``extract(body)`` then returns an ``Extracted``: one string made of labelled
segments joined by a newline, so that a match offset still points into the text that was scanned and
``label_at(offset)`` says which part (title, alt text, a JSON key, a form field) it came from. The scan
job keeps the same ``Body`` for the snapshot, so nothing is classified or decoded twice.

Kinds (``kinds``): html, xml (``markup``: visible text, <title>, alt text, input values and
placeholders; never script, style, template, noscript or markup), json (string values, recursively),
ndjson, sse (``jsontext``: AI-chat token streams are joined into the answer the pupil saw), text, form
(urlencoded fields), multipart (``forms``: text fields; file parts skipped), binary and code (skipped,
counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from netmon.scan.decoding import (
    DEFAULT_BODY_CAP,
    codec_for,
    decompress,
    detect_charset,
    header_charset,
    utf16_without_bom,
)
from netmon.scan.extract.forms import MAX_FIELDS, form_fields, multipart_fields
from netmon.scan.extract.jsontext import (
    MAX_EVENTS,
    json_text,
    message_text,
    ndjson_text,
    plain_text,
    sse_events,
    sse_text,
    token_of,
)
from netmon.scan.extract.jsonvalues import json_strings
from netmon.scan.extract.kinds import KINDS, kind_of, media_type
from netmon.scan.extract.markup import (
    HIDDEN_TAGS,
    MAX_HTML_DEPTH,
    crude_html_text,
    html_text,
    too_deep,
    xml_text,
)
from netmon.scan.extract.segments import SEP, Extracted, join

__all__ = [
    "DEFAULT_BODY_CAP",
    "HIDDEN_TAGS",
    "KINDS",
    "MAX_EVENTS",
    "MAX_FIELDS",
    "MAX_HTML_DEPTH",
    "REASONS",
    "SEP",
    "Body",
    "Extracted",
    "crude_html_text",
    "decode_body",
    "extract",
    "extract_body",
    "extract_text",
    "form_fields",
    "html_text",
    "join",
    "json_strings",
    "json_text",
    "kind_of",
    "media_type",
    "message_text",
    "multipart_fields",
    "ndjson_text",
    "plain_text",
    "read_body",
    "sse_events",
    "sse_text",
    "token_of",
    "too_deep",
    "xml_text",
]

#: Skip reasons this package can report (ScanStats.skipped).
REASONS = (
    "binary-type",  # images, media, fonts, archives, octet-stream, or bytes that are not text
    "code-type",  # CSS and JavaScript: not text a person reads
    "unsupported-type",  # a multipart or other type netmon does not read
    "multipart-file",  # a file part of a multipart upload (not scanned as text)
    "bad-json",  # JSON that could not be parsed at all (string literals were still scanned)
    "deep-html",  # HTML nested too deep to parse as a tree: its text was extracted crudely
    "too-many-parts",  # a multipart body with more than MAX_FIELDS parts: the rest was not read
)

#: Kinds that are never read as text (each is its own skip reason, ``<kind>-type``).
UNREAD = ("binary", "code", "unsupported")


@dataclass(frozen=True, slots=True)
class Body:
    """A body made readable, worked out once: decompressed bytes (capped), their kind, their charset
    (a Python codec, and the length of a byte-order mark to skip), and skip reasons so far."""

    data: bytes
    content_type: str | None
    kind: str
    charset: str = "utf-8"
    bom: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The body decoded in its charset (invalid bytes become U+FFFD). Decodes on each use."""
        data = self.data[self.bom :] if self.bom else self.data
        if self.charset == "cp1252" and data.isascii():
            return data.decode("ascii")
        return data.decode(self.charset, "replace")


def read_body(
    data: bytes, content_type: str | None, *, kind: str | None = None, skipped: tuple[str, ...] = ()
) -> Body:
    """Classify decoded body bytes and find their charset, once. ``kind``: already known (skips the
    classification)."""
    if kind is None:
        kind = kind_of(content_type, data)
    if kind in UNREAD or kind == "multipart":
        return Body(data, content_type, kind, "", 0, skipped)  # parts carry their own charsets
    if kind == "form":  # percent-escapes are in the page's charset, as the header says (or UTF-8)
        return Body(data, content_type, kind, codec_for(header_charset(content_type)) or "utf-8", 0, skipped)
    if kind in ("json", "ndjson", "sse") and header_charset(content_type) is None:
        # these are UTF-8 unless a BOM says not, or they are UTF-16 without one (RFC 4627)
        name, bom, _ = detect_charset(data, "text/plain; charset=utf-8", document=False)
        if not bom:
            name = utf16_without_bom(data) or name
    else:
        name, bom, _ = detect_charset(data, content_type, document=kind in ("html", "xml"))
    return Body(data, content_type, kind, name, bom, skipped)


def decode_body(
    body: bytes,
    content_encoding: str | None = None,
    content_type: str | None = None,
    *,
    cap: int = DEFAULT_BODY_CAP,
) -> Body:
    """Raw body bytes -> decompressed (at most ``cap`` bytes, bomb-safe) -> a ``Body``.

    Never raises on bad input: problems are skip reasons (``netmon.scan.decoding.REASONS``)."""
    decoded = decompress(body, content_encoding, cap)
    return read_body(decoded.data, content_type, skipped=decoded.skipped)


def extract(body: Body) -> Extracted:
    """The text of a ``Body``, by its kind and charset. Never raises on bad input: unreadable kinds come
    back empty with a skip reason."""
    kind = body.kind
    if kind in UNREAD:
        return Extracted("", kind=kind, skipped=(f"{kind}-type",))
    if kind == "multipart":
        fields, skipped = multipart_fields(body.data, body.content_type)
        return join(fields, kind, skipped)
    if kind == "html":
        if body.charset == "utf-8":
            return html_text(body.data[body.bom :])  # lexbor reads UTF-8 bytes itself: no decode
        return html_text(body.text)
    if kind == "form":
        return join(form_fields(body.text, body.charset), "form")
    return _extract_str(body.text, kind)


def extract_body(data: bytes, content_type: str | None) -> Extracted:
    """Decoded (decompressed, capped) body bytes -> text, by content type and charset."""
    return extract(read_body(data, content_type))


def _extract_str(content: str, kind: str) -> Extracted:
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
    if kind in UNREAD or kind == "multipart":
        return extract_body(content.encode("utf-8"), content_type)
    return _extract_str(content, kind)
