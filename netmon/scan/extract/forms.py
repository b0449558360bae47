"""Request bodies: urlencoded forms and multipart/form-data (text fields; file parts skipped)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus

from netmon.scan.decoding import decode_text
from netmon.scan.extract.jsontext import json_text
from netmon.scan.extract.kinds import kind_of
from netmon.scan.extract.segments import SECRET_NAME, is_blob

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
        if SECRET_NAME.search(name) or is_blob(value.strip()):
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
        if SECRET_NAME.search(name):
            continue
        text = decode_text(body, part_type or "text/plain; charset=utf-8", document=False).text
        if kind_of(part_type, body[:1024]) == "json":
            fields.extend((f"{name}.{k}" if k else name, s) for k, s in json_text(text).segments())
        elif not is_blob(text.strip()):
            fields.append((name, text))
    return fields, skipped
