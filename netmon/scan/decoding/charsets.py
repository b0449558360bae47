"""Charsets: declared (byte-order mark, Content-Type header, <meta> / <?xml>), detected (UTF-16 without a
BOM by its NUL bytes) and sniffed (UTF-8, else charset-normalizer, else windows-1252), as a browser reads
them. Detection looks at a bounded prefix; decoding never raises.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

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


#: How many bytes ``utf16_without_bom`` looks at.
UTF16_SAMPLE = 1024


def utf16_without_bom(data: bytes) -> str | None:
    """``utf-16-le`` / ``utf-16-be`` when ``data`` (its first UTF16_SAMPLE bytes) is UTF-16 without a
    byte-order mark, else None. Told by the pattern of NUL bytes: text with Latin letters, digits,
    spaces or markup has the high byte of most characters NUL, always on the same side of each pair
    (the odd positions for little-endian), and almost never on the other side."""
    head = data[:UTF16_SAMPLE]
    n = len(head) // 2
    if n < 2:
        return None
    evens, odds = head[0 : 2 * n : 2], head[1 : 2 * n : 2]
    even, odd = evens.count(0), odds.count(0)
    high, low = max(even, odd), min(even, odd)
    # At least a third of the characters have a NUL high byte; a NUL low byte would be U+0000 or a
    # rare code point (U+0100, U+0400...) and appears in at most 1 in 50; and so do control characters.
    if high * 3 < n or low * 50 > n:
        return None
    lows = evens if odd > even else odds
    if (n - len(lows.translate(None, _CONTROLS))) * 50 > n:
        return None
    return "utf-16-le" if odd > even else "utf-16-be"


_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


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
    utf16 = utf16_without_bom(sample)
    if utf16 is not None:
        return utf16
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
