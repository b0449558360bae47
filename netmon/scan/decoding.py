"""From HTTP body bytes to text: content encodings (bomb-safe) and charsets (declared and sniffed).

Everything here is bounded: decompression streams and stops at a hard output cap, so a compression
bomb costs at most ``cap`` bytes of memory; charset detection looks at a bounded prefix. Bad input
never raises: problems come back as counted skip reasons (see ``REASONS``), never with content.
"""

from __future__ import annotations

import codecs
import io
import re
import zlib
from dataclasses import dataclass

import brotli
import zstandard

#: Skip reasons this module can report (ScanStats.skipped); documented in README.md ("Limits and skips").
REASONS = (
    "body-cap",  # the decoded body was longer than the cap; the first ``cap`` bytes were scanned
    "decompression-bomb",  # compressed data expanded beyond the cap at an absurd ratio
    "bad-encoding",  # the body could not be decompressed at all (nothing scanned from it)
    "truncated-encoding",  # the compressed stream was cut short or corrupt; the part before was scanned
    "unknown-encoding",  # a Content-Encoding netmon does not know (e.g. "compress")
    "nested-encoding",  # more compression layers than MAX_LAYERS
)

#: Decoded bytes scanned per body unless configured (``netmon_scan_max_bytes``).
DEFAULT_BODY_CAP = 2 * 1024 * 1024
#: Most compression layers undone for one body (declared plus sniffed).
MAX_LAYERS = 3
#: Expansion ratio above which an over-cap body is called a bomb rather than merely big.
BOMB_RATIO = 200
#: zstd window limit, as browsers use for HTTP (RFC 8878 recommends 8 MiB).
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
_CHUNK = 64 * 1024
#: Compressed input is fed in small steps so the expansion ratio at the cap is measured closely.
_IN_STEP = 2048

_ALIASES = {"x-gzip": "gzip", "x-deflate": "deflate", "brotli": "br", "x-br": "br", "zstandard": "zstd"}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decompressed body: at most ``cap`` bytes, with the reasons it is partial (if any)."""

    data: bytes
    skipped: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()  # encodings undone, outermost first


class _Truncated(Exception):
    """Raised inside a decoder when the stream is corrupt after some output (carries that output)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def parse_encodings(header: str | None) -> list[str]:
    """``"gzip, br"`` -> ``["gzip", "br"]`` (in the order applied by the server), identity dropped."""
    if not header:
        return []
    out = []
    for token in header.lower().split(","):
        name = _ALIASES.get(token.strip(), token.strip())
        if name and name != "identity":
            out.append(name)
    return out


def _zlib(data: bytes, cap: int, wbits: int) -> tuple[bytes, int]:
    """Inflate with ``wbits``; returns (output up to cap+1 bytes, input bytes consumed)."""
    out: list[bytes] = []
    total = 0
    pos = 0
    d = zlib.decompressobj(wbits)
    pending = data
    while True:
        try:
            piece = d.decompress(pending, cap + 1 - total)
        except zlib.error as exc:
            if total == 0:
                raise
            raise _Truncated(b"".join(out)) from exc
        out.append(piece)
        total += len(piece)
        if total > cap:
            return b"".join(out), len(data) - len(d.unconsumed_tail) - len(d.unused_data)
        if d.eof:
            rest = d.unused_data
            # Concatenated gzip members are one body (RFC 1952); anything else after the end is junk.
            if wbits == 31 and rest.startswith(_GZIP_MAGIC):
                pos = len(data) - len(rest)
                d = zlib.decompressobj(wbits)
                pending = rest
                continue
            return b"".join(out), len(data)
        if d.unconsumed_tail:
            pending = d.unconsumed_tail
            continue
        # Input exhausted before the end of the stream: truncated body (lying Content-Length etc.).
        if total == 0 and pos == 0:
            raise zlib.error("truncated stream with no output")
        raise _Truncated(b"".join(out))


def _deflate(data: bytes, cap: int) -> tuple[bytes, int]:
    # "deflate" is meant to be zlib-wrapped (RFC 9110) but some servers send raw deflate.
    try:
        return _zlib(data, cap, 15)
    except zlib.error:
        return _zlib(data, cap, -15)


def _brotli(data: bytes, cap: int) -> tuple[bytes, int]:
    d = brotli.Decompressor()
    out: list[bytes] = []
    total = 0
    pos = 0
    for _ in range(len(data) // 512 + cap // 1024 + 64):  # a hard bound on the loop
        if d.can_accept_more_data():
            if pos >= len(data):
                break
            chunk = data[pos : pos + _IN_STEP]
            pos += len(chunk)
        else:
            chunk = b""
        try:
            piece = d.process(chunk, output_buffer_limit=max(1, cap + 1 - total))
        except brotli.error as exc:
            if total == 0:
                raise
            raise _Truncated(b"".join(out)) from exc
        out.append(piece)
        total += len(piece)
        if total > cap:
            return b"".join(out), pos
        if d.is_finished():
            return b"".join(out), pos
    if total == 0:
        raise brotli.error("truncated stream with no output")
    raise _Truncated(b"".join(out))


def _zstd(data: bytes, cap: int) -> tuple[bytes, int]:
    dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    source = io.BytesIO(data)
    reader = dctx.stream_reader(source, read_size=_IN_STEP, read_across_frames=True)
    out: list[bytes] = []
    total = 0
    try:
        while total <= cap:
            piece = reader.read(min(_CHUNK, cap + 1 - total))
            if not piece:
                break
            out.append(piece)
            total += len(piece)
    except zstandard.ZstdError as exc:
        if total == 0:
            raise
        raise _Truncated(b"".join(out)) from exc
    if not data.startswith(_ZSTD_MAGIC):
        raise zstandard.ZstdError("not a zstd frame")
    if total <= cap:
        # The reader says nothing about a frame cut short. Under the cap the whole output is known to
        # fit, so a second, unbounded pass is safe and tells whether the first frame ended.
        probe = dctx.decompressobj()
        try:
            probe.decompress(data)
        except zstandard.ZstdError as exc:
            raise _Truncated(b"".join(out)) from exc
        if not probe.eof:
            if total == 0:
                raise zstandard.ZstdError("truncated stream with no output")
            raise _Truncated(b"".join(out))
    return b"".join(out), source.tell()


_DECODERS = {
    "gzip": lambda data, cap: _zlib(data, cap, 31),
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}


def _sniff_layer(data: bytes) -> str | None:
    if data.startswith(_GZIP_MAGIC):
        return "gzip"
    if data.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def decompress(body: bytes, content_encoding: str | None, cap: int, *, sniff: bool = True) -> Decoded:
    """Undo the body's content encodings, never producing more than ``cap`` bytes.

    ``sniff``: also undo gzip/zstd layers that are not declared (double-compressed bodies, or a
    server that forgot the header); only for bodies whose media type says text.
    """
    if not body:
        return Decoded(b"")
    declared = parse_encodings(content_encoding)
    layers: list[str] = []
    skipped: list[str] = []
    data = body
    todo = list(reversed(declared))  # the last encoding applied is undone first
    while True:
        if todo:
            name = todo.pop(0)
        elif sniff and (guess := _sniff_layer(data)) is not None and len(layers) <= MAX_LAYERS:
            name = guess
        else:
            break
        if len(layers) >= MAX_LAYERS:
            return Decoded(b"", ("nested-encoding",), tuple(layers))
        decoder = _DECODERS.get(name)
        if decoder is None:
            return Decoded(b"", ("unknown-encoding",), tuple(layers))
        try:
            out, consumed = decoder(data, cap)
        except _Truncated as partial:
            data = partial.data
            skipped.append("truncated-encoding")
            layers.append(name)
            break
        except (zlib.error, brotli.error, zstandard.ZstdError, ValueError, EOFError):
            return Decoded(b"", ("bad-encoding",), tuple(layers))
        layers.append(name)
        if len(out) > cap:
            ratio = len(out) / max(consumed, 1)
            skipped.append("decompression-bomb" if ratio >= BOMB_RATIO else "body-cap")
            return Decoded(out[:cap], tuple(skipped), tuple(layers))
        data = out
    if len(data) > cap:
        skipped.append("body-cap")
        data = data[:cap]
    return Decoded(data, tuple(skipped), tuple(layers))


# ---------------------------------------------------------------------------------------------------
# Charsets

#: WHATWG-style label folding to Python codec names (a browser reads these labels this way).
_LABELS = {
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "l1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "x-cp1252": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "cp936": "gb18030",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "ms932": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "windows-949": "cp949",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "utf-16": "utf-16-le",
    "utf-16le": "utf-16-le",
    "unicode": "utf-16-le",
    "ucs-2": "utf-16-le",
    "utf-16be": "utf-16-be",
    "x-user-defined": "cp1252",
}
#: Python codecs that are not charsets a web page may use (or are unsafe to honour).
_REFUSED = {
    "utf_7",
    "unicode_escape",
    "raw_unicode_escape",
    "idna",
    "punycode",
    "undefined",
    "mbcs",
    "oem",
    "charmap",
    "utf_32",
    "utf_32_le",
    "utf_32_be",
}

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';,\s]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_\-:.]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([a-z0-9_\-.:]+)""", re.I)
#: How far into a page <meta charset> is looked for (the HTML standard says 1024; be generous).
META_SCAN = 4096
#: How many bytes charset-normalizer looks at when a page declares nothing and is not UTF-8.
SNIFF_SAMPLE = 32 * 1024


def codec_for(label: str | None) -> str | None:
    """A charset label from a header or document -> a Python codec name, or None if unknown/refused."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _LABELS:
        return _LABELS[key]
    try:
        info = codecs.lookup(key)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("-", "_") in _REFUSED:
        return None
    return info.name


def header_charset(content_type: str | None) -> str | None:
    """The charset label of a Content-Type header value, if any (not validated)."""
    if not content_type:
        return None
    m = _CT_CHARSET.search(content_type)
    return m.group(1) if m else None


def bom_charset(data: bytes) -> tuple[str, int] | None:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def document_charset(data: bytes) -> str | None:
    """The charset a document declares in itself: XML declaration or HTML <meta> (a label)."""
    head = data[:META_SCAN]
    m = _XML_DECL.match(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii", "replace") if m else None


def _utf8_ok(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A body cut by the cap may end in the middle of a character: that is still UTF-8.
        return exc.start >= len(data) - 3 and exc.reason == "unexpected end of data"
    return True


def sniff_charset(data: bytes) -> str:
    """Guess the charset of undeclared text: ASCII/UTF-8 first, then charset-normalizer, else cp1252."""
    sample = data[:SNIFF_SAMPLE]
    # UTF-16 without BOM: many NUL bytes in alternate positions.
    if sample.count(0) > len(sample) // 4:
        even = sample[0::2].count(0)
        return "utf-16-be" if even > sample[1::2].count(0) else "utf-16-le"
    if data.isascii() or _utf8_ok(data):
        return "utf-8"
    from charset_normalizer import from_bytes  # imported lazily: only non-UTF-8 undeclared text

    best = from_bytes(sample, steps=4, chunk_size=512, cp_isolation=None).best()
    name = codec_for(best.encoding) if best is not None else None
    latin = best is not None and all(a.startswith(_LATIN_ALPHABETS) for a in best.alphabets)
    if name is None or latin or name.replace("-", "_") in _LATIN_GUESSES:
        # Short Western text fits several Latin code pages; a UK browser's fallback is windows-1252.
        return "cp1252"
    return name


#: Single-byte Latin code pages that sniffing cannot tell from windows-1252 on short text.
_LATIN_GUESSES = {
    "cp1250",
    "cp1252",
    "iso8859_1",
    "cp1254",
    "cp1257",
    "latin_1",
    "iso8859_2",
    "iso8859_3",
    "iso8859_4",
    "iso8859_9",
    "iso8859_10",
    "iso8859_13",
    "iso8859_14",
    "iso8859_15",
    "iso8859_16",
    "mac_roman",
    "mac_latin2",
    "mac_iceland",
    "mac_turkish",
    "cp437",
    "cp850",
    "cp858",
    "cp1140",
    "hp_roman8",
    "cp037",
    "cp500",
}


#: Unicode blocks of Western text: a guess whose decoding holds only these is read as windows-1252.
_LATIN_ALPHABETS = (
    "Basic Latin",
    "Latin",
    "General Punctuation",
    "Currency Symbols",
    "Spacing Modifier",
    "Combining Diacritical",
    "Letterlike Symbols",
    "Number Forms",
    "Box Drawing",
)


@dataclass(frozen=True, slots=True)
class Text:
    """Decoded text and how its charset was chosen (``how``: bom, header, document, sniffed)."""

    text: str
    charset: str
    how: str


def detect_charset(
    data: bytes, content_type: str | None = None, *, document: bool = True
) -> tuple[str, int, str]:
    """(codec, BOM length, how) for text bytes: BOM, then the header's charset, then the document's own
    declaration (``document``: <meta>/<?xml>), then sniffing. ``how``: bom, header, document, sniffed."""
    found = bom_charset(data)
    if found is not None:
        return found[0], found[1], "bom"
    for how, label in (
        ("header", header_charset(content_type)),
        ("document", document_charset(data) if document else None),
    ):
        name = codec_for(label)
        if how == "document" and name in ("utf-16-le", "utf-16-be"):
            name = "utf-8"  # a page that can declare itself in ASCII is not UTF-16 (HTML standard)
        if name is not None:
            return name, 0, how
    return sniff_charset(data), 0, "sniffed"


def decode_text(data: bytes, content_type: str | None = None, *, document: bool = True) -> Text:
    """Bytes -> str in the charset ``detect_charset`` finds. Invalid bytes become U+FFFD; never raises."""
    name, skip, how = detect_charset(data, content_type, document=document)
    if skip:
        data = data[skip:]
    if name == "cp1252" and data.isascii():
        return Text(data.decode("ascii"), name, how)
    return Text(data.decode(name, "replace"), name, how)
