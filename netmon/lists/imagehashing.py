"""Decode an image from response bytes and hash it, within byte and pixel limits.

Runs in a worker (never on the proxy's event loop). Exact digests (md5, sha1, sha256) are taken over the
bytes as received; perceptual hashes (pHash, dHash, 64 bits each) over the decoded picture, so a resized or
recompressed copy of a listed image still lands within a small Hamming distance. A decompression bomb, an
over-sized body or a broken image is a counted skip (:class:`ImageSkip`), never an exception. Nothing is
ever written to disk.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import imagehash
from PIL import Image, UnidentifiedImageError

#: Defaults: 15 MB of bytes, 40 megapixels (a 4K photo is ~8.3 MP).
DEFAULT_MAX_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
#: Smallest image worth hashing (favicons and tracking pixels are skipped).
MIN_SIDE = 16
#: JPEG draft mode decodes at a reduced scale no smaller than this on each side (pHash works on 32x32).
DRAFT_SIDE = 128

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True, slots=True)
class ImageHashes:
    """Every hash of one image, plus its size: all that netmon ever keeps of it."""

    sha256: str
    sha1: str
    md5: str
    phash: str  # 16 hex digits
    dhash: str  # 16 hex digits
    bytes: int
    width: int
    height: int

    def digest(self, kind: str) -> str:
        return str(getattr(self, kind))


@dataclass(frozen=True, slots=True)
class ImageSkip:
    """Why an image was not hashed: a counter name suffix, e.g. ``decompression-bomb``."""

    reason: str


def sniff_image(data: bytes) -> str | None:
    """Media type from the first bytes, or None when they are not a known image format."""
    head = data[:16]
    for magic, media in _MAGIC:
        if head.startswith(magic):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def looks_like_image(content_type: str | None, data: bytes) -> bool:
    """True when the response claims an image type or its bytes are one (servers mislabel images)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.startswith("image/") and media != "image/svg+xml":
        return True
    return sniff_image(data) is not None


def exact_digests(data: bytes) -> tuple[str, str, str]:
    """(sha256, sha1, md5) of the bytes as received."""
    return (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


def hash_image(data: bytes, limits: ImageLimits = ImageLimits()) -> ImageHashes | ImageSkip:
    """Hash one image; any image netmon cannot or should not decode comes back as an ImageSkip."""
    if len(data) > limits.max_bytes:
        return ImageSkip("too-many-bytes")
    if not data:
        return ImageSkip("empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > limits.max_pixels:
                return ImageSkip("decompression-bomb")
            if width < MIN_SIDE or height < MIN_SIDE:
                return ImageSkip("too-small")
            if im.format == "JPEG":
                im.draft("L", (min(width, DRAFT_SIDE), min(height, DRAFT_SIDE)))
            im.seek(0)
            im.load()
            grey = im.convert("L")
        # box-reduce big pictures first (as JPEG draft mode does): same hashes, a tenth of the time
        factor = min(grey.size) // DRAFT_SIDE
        if factor >= 2:
            grey = grey.reduce(factor)
    except Image.DecompressionBombError:
        return ImageSkip("decompression-bomb")
    except UnidentifiedImageError:
        return ImageSkip("broken-image" if sniff_image(data) else "not-an-image")
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError):
        return ImageSkip("broken-image")
    sha256, sha1, md5 = exact_digests(data)
    return ImageHashes(
        sha256=sha256,
        sha1=sha1,
        md5=md5,
        phash=str(imagehash.phash(grey)),
        dhash=str(imagehash.dhash(grey)),
        bytes=len(data),
        width=width,
        height=height,
    )
