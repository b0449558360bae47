"""From HTTP body bytes to text: content encodings (``compression``: bomb-safe) and charsets
(``charsets``: declared, detected and sniffed).

Everything here is bounded: decompression streams and stops at a hard output cap, so a compression
bomb costs at most ``cap`` bytes of memory; charset detection looks at a bounded prefix. Bad input
never raises: problems come back as counted skip reasons (see ``REASONS``), never with content.
"""

from __future__ import annotations

from netmon.scan.decoding.charsets import (
    META_SCAN,
    SNIFF_SAMPLE,
    Text,
    bom_charset,
    codec_for,
    decode_text,
    detect_charset,
    document_charset,
    header_charset,
    sniff_charset,
    utf16_without_bom,
)
from netmon.scan.decoding.compression import (
    BOMB_RATIO,
    DEFAULT_BODY_CAP,
    MAX_LAYERS,
    ZSTD_MAX_WINDOW,
    Decoded,
    decompress,
    parse_encodings,
)

__all__ = [
    "BOMB_RATIO",
    "DEFAULT_BODY_CAP",
    "MAX_LAYERS",
    "META_SCAN",
    "REASONS",
    "SNIFF_SAMPLE",
    "ZSTD_MAX_WINDOW",
    "Decoded",
    "Text",
    "bom_charset",
    "codec_for",
    "decode_text",
    "decompress",
    "detect_charset",
    "document_charset",
    "header_charset",
    "parse_encodings",
    "sniff_charset",
    "utf16_without_bom",
]

#: Skip reasons this package can report (ScanStats.skipped); documented in docs/proxy.md.
REASONS = (
    "body-cap",  # the decoded body was longer than the cap; the first ``cap`` bytes were scanned
    "decompression-bomb",  # compressed data expanded beyond the cap at an absurd ratio
    "bad-encoding",  # the body could not be decompressed at all (nothing scanned from it)
    "truncated-encoding",  # the compressed stream was cut short or corrupt; the part before was scanned
    "unknown-encoding",  # a Content-Encoding netmon does not know (e.g. "compress")
    "nested-encoding",  # more compression layers than MAX_LAYERS
)
