"""Content encodings undone, bomb-safe: gzip, deflate, brotli and zstd, declared or sniffed.

Decompression streams and stops at a hard output cap, so a compression bomb costs at most ``cap`` bytes of
memory. Bad input never raises: problems come back as skip reasons on ``Decoded``.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import brotli
import zstandard

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
