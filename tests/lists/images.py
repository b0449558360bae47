"""Test images made with Pillow (never real content): a smooth random picture and its variants."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A smooth, photo-like random picture (low-frequency structure, like a real photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def encode(image: Image.Image, fmt: str = "JPEG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def resized_copy(image: Image.Image, scale: float = 0.5, quality: int = 55) -> bytes:
    """The same picture resized and recompressed (what a re-upload to another site does)."""
    w, h = image.size
    return encode(
        image.resize((int(w * scale), int(h * scale)), Image.Resampling.LANCZOS), "JPEG", quality=quality
    )


def bomb_png(side: int = 20_000) -> bytes:
    """A tiny PNG that claims side x side pixels (a decompression bomb: ~400 MP of one colour)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
