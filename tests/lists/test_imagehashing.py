from __future__ import annotations

import imagehash
import pytest

from netmon.lists.hashindex import HashIndex
from netmon.lists.hashlists import HashEntry
from netmon.lists.imagehashing import (
    ImageHashes,
    ImageLimits,
    ImageSkip,
    hash_image,
    looks_like_image,
    sniff_image,
)
from tests.lists.images import bomb_png, encode, picture, resized_copy


def _hashes(data: bytes) -> ImageHashes:
    result = hash_image(data)
    assert isinstance(result, ImageHashes), result
    return result


def _index(h: ImageHashes, *types: str) -> HashIndex:
    return HashIndex(
        HashEntry(t, h.digest(t), "csam", 5, "test", "list.csv", i + 2) for i, t in enumerate(types)
    )


def _distance(a: str, b: str) -> int:
    return int(imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b))


def test_exact_digest_hit() -> None:
    data = encode(picture(1), "JPEG", quality=90)
    h = _hashes(data)
    match = _index(h, "sha256").match(_hashes(data))
    assert match is not None and match.distance == 0 and match.entry.type == "sha256"
    assert _index(h, "md5").match(h) is not None
    assert _index(h, "sha1").match(h) is not None


def test_resized_recompressed_copy_is_caught_perceptually_not_exactly() -> None:
    original = picture(2)
    listed = _hashes(encode(original, "JPEG", quality=92))
    copy = _hashes(resized_copy(original, 0.5, 50))
    assert copy.sha256 != listed.sha256
    assert _index(listed, "sha256", "md5").match(copy) is None
    match = _index(listed, "phash").match(copy)
    assert match is not None and match.distance <= 8
    assert _index(listed, "dhash").match(copy) is not None


def test_png_and_webp_copies_are_caught() -> None:
    original = picture(3)
    listed = _hashes(encode(original, "PNG"))
    index = _index(listed, "phash")
    assert index.match(_hashes(encode(original.resize((640, 480)), "WEBP", quality=60))) is not None
    assert index.match(_hashes(encode(original.convert("P"), "GIF"))) is not None


@pytest.mark.parametrize("seed", [10, 11, 12, 13, 14, 15])
def test_different_image_is_not_caught(seed: int) -> None:
    listed = _hashes(encode(picture(4), "JPEG"))
    other = _hashes(encode(picture(seed), "JPEG"))
    assert _distance(listed.phash, other.phash) > 16
    assert _index(listed, "phash", "dhash", "sha256").match(other) is None


def test_jpeg_draft_mode_gives_the_same_phash_as_full_decode() -> None:
    import io

    from PIL import Image

    data = encode(picture(5, (1600, 1200)), "JPEG", quality=85)
    full = str(imagehash.phash(Image.open(io.BytesIO(data)).convert("L")))
    assert _distance(_hashes(data).phash, full) <= 2


def test_decompression_bomb_is_a_counted_skip() -> None:
    data = bomb_png()
    assert len(data) < 100_000
    assert hash_image(data) == ImageSkip("decompression-bomb")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "broken-image"),
        (b"not an image at all" * 10, "not-an-image"),
    ],
)
def test_broken_inputs_are_skipped_never_raised(data: bytes, reason: str) -> None:
    assert hash_image(data) == ImageSkip(reason)


def test_truncated_jpeg_is_a_skip() -> None:
    data = encode(picture(6), "JPEG")
    assert hash_image(data[: len(data) // 3]) == ImageSkip("broken-image")


def test_byte_and_pixel_limits() -> None:
    data = encode(picture(7), "JPEG")
    assert hash_image(data, ImageLimits(max_bytes=100)) == ImageSkip("too-many-bytes")
    assert hash_image(data, ImageLimits(max_pixels=1000)) == ImageSkip("decompression-bomb")


def test_tiny_images_are_skipped() -> None:
    assert hash_image(encode(picture(8, (8, 8)), "PNG")) == ImageSkip("too-small")


@pytest.mark.parametrize(
    ("content_type", "fmt", "expected"),
    [
        ("image/jpeg", "JPEG", True),
        ("application/octet-stream", "PNG", True),
        ("text/html", "GIF", True),
        ("image/webp", "WEBP", True),
        ("image/svg+xml", None, False),
        ("text/html", None, False),
    ],
)
def test_images_recognised_by_type_and_by_sniffing(
    content_type: str, fmt: str | None, expected: bool
) -> None:
    data = encode(picture(9, (32, 32)), fmt) if fmt else b"<html><body>hello</body></html>"
    assert looks_like_image(content_type, data[:16]) is expected
    if fmt:
        assert sniff_image(data) == f"image/{fmt.lower()}"
