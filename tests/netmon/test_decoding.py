"""netmon.scan.decoding: content encodings (bomb-safe, never raising) and charsets (declared and sniffed)."""

from __future__ import annotations

import base64
import codecs
import gzip
import os
import tracemalloc
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from netmon.scan.decoding import (
    REASONS,
    codec_for,
    decode_text,
    decompress,
    detect_charset,
    parse_encodings,
    utf16_without_bom,
)

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "pages"
TEXT = (
    "<html><body><p>" + "The quick brown fox jumps over the lazy dog. " * 400 + "</p></body></html>"
).encode()
#: Incompressible text, so that cutting the compressed stream in half really loses data.
NOISE = base64.b64encode(os.urandom(60_000))


def _zstd(data: bytes, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(data)


ENCODERS = {
    "gzip": lambda d: gzip.compress(d),
    "x-gzip": lambda d: gzip.compress(d),
    "deflate": lambda d: zlib.compress(d),
    "br": lambda d: brotli.compress(d),
    "zstd": _zstd,
}


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_each_encoding_round_trips(encoding: str) -> None:
    out = decompress(ENCODERS[encoding](TEXT), encoding, cap=1 << 20)
    assert out.data == TEXT
    assert out.skipped == ()


def test_raw_deflate_is_accepted() -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = raw.compress(TEXT) + raw.flush()
    assert decompress(body, "deflate", cap=1 << 20).data == TEXT


def test_stacked_encodings_are_undone_last_first() -> None:
    body = brotli.compress(gzip.compress(TEXT))
    out = decompress(body, "gzip, br", cap=1 << 20)
    assert out.data == TEXT
    assert out.layers == ("br", "gzip")


def test_concatenated_gzip_members_are_one_body() -> None:
    out = decompress(gzip.compress(TEXT) + gzip.compress(b"tail"), "gzip", cap=1 << 20)
    assert out.data == TEXT + b"tail"


def test_undeclared_nested_gzip_is_sniffed() -> None:
    out = decompress(gzip.compress(gzip.compress(TEXT)), "gzip", cap=1 << 20)
    assert out.data == TEXT
    assert out.layers == ("gzip", "gzip")


def test_too_many_layers_is_a_counted_skip() -> None:
    body = TEXT
    for _ in range(6):
        body = gzip.compress(body)
    out = decompress(body, "gzip", cap=1 << 20)
    assert out.skipped == ("nested-encoding",)
    assert out.data == b""


def test_identity_and_missing_header() -> None:
    assert decompress(TEXT, None, cap=1 << 20).data == TEXT
    assert decompress(TEXT, "identity", cap=1 << 20).data == TEXT
    assert parse_encodings(" GZIP , identity, br ") == ["gzip", "br"]


def test_empty_body_is_fine_whatever_the_header() -> None:
    assert decompress(b"", "gzip", cap=100).data == b""


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_truncated_stream_keeps_what_came_before(encoding: str) -> None:
    """A lying Content-Length or a cut connection: the decodable part is scanned, counted as truncated."""
    body = ENCODERS[encoding](NOISE * 3)
    out = decompress(body[: len(body) * 2 // 3], encoding, cap=1 << 20)
    assert "truncated-encoding" in out.skipped or out.skipped == ("bad-encoding",)
    assert (NOISE * 3).startswith(out.data)
    if encoding != "zstd":  # zstd decodes whole 128 KB blocks: a cut block yields nothing
        assert len(out.data) > 10_000


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_garbage_is_bad_encoding(encoding: str) -> None:
    out = decompress(b"this is not compressed at all" * 10, encoding, cap=1 << 20)
    assert out.skipped == ("bad-encoding",)
    assert out.data == b""


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_corrupted_middle_does_not_raise(encoding: str) -> None:
    body = bytearray(ENCODERS[encoding](NOISE))
    body[len(body) // 2 : len(body) // 2 + 64] = b"\xff" * 64
    out = decompress(bytes(body), encoding, cap=1 << 20)
    assert set(out.skipped) <= set(REASONS)
    assert len(out.data) <= len(NOISE)  # brotli has no checksum: corrupt literals may pass unnoticed


def test_unknown_encoding_is_counted() -> None:
    assert decompress(b"xyz", "compress", cap=100).skipped == ("unknown-encoding",)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_big_body_is_capped(encoding: str) -> None:
    out = decompress(ENCODERS[encoding](NOISE), encoding, cap=10_000)
    assert out.data == NOISE[:10_000]
    assert out.skipped == ("body-cap",)


def test_identity_body_over_cap() -> None:
    out = decompress(NOISE, None, cap=1000)
    assert out.data == NOISE[:1000]
    assert out.skipped == ("body-cap",)


BOMB_SIZE = 1 << 28  # 256 MiB of zeros once inflated


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    zeros = b"\0" * (64 << 20)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz = z.compress(zeros)
    for _ in range(BOMB_SIZE // len(zeros) - 1):
        gz += z.compress(zeros)
    gz += z.flush()
    cctx = zstandard.ZstdCompressor(level=3)
    zs = cctx.compress(b"\0" * (256 << 20))  # 8 KB that inflate to 256 MiB
    br = brotli.compress(b"\0" * (64 << 20), quality=5)
    return {"gzip": gz, "zstd": zs, "br": br}


@pytest.mark.parametrize("encoding", ["gzip", "zstd", "br"])
def test_bomb_never_takes_the_memory(bombs: dict[str, bytes], encoding: str) -> None:
    cap = 1 << 20
    tracemalloc.start()
    try:
        out = decompress(bombs[encoding], encoding, cap=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.skipped == ("decompression-bomb",)
    assert len(out.data) == cap
    assert peak < 8 * cap  # a few buffers of the cap, never the inflated size


def test_nested_bomb(bombs: dict[str, bytes]) -> None:
    out = decompress(gzip.compress(bombs["zstd"]), "zstd, gzip", cap=1 << 20)
    assert out.skipped == ("decompression-bomb",)


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=2048), header=st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, br", None])
)
def test_random_bytes_never_raise(body: bytes, header: str | None) -> None:
    out = decompress(body, header, cap=4096)
    assert len(out.data) <= 4096
    assert set(out.skipped) <= set(REASONS)


# ---------------------------------------------------------------------------------------------------
# Charsets


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"),
        ("UTF8", "utf-8"),
        ("iso-8859-1", "cp1252"),  # as browsers read it
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("Shift_JIS", "cp932"),
        ("windows-1251", "cp1251"),
        ("koi8-r", "koi8-r"),
        ("gb2312", "gb18030"),
        ("euc-kr", "cp949"),
        ('"utf-8"', "utf-8"),
        ("utf-7", None),  # refused: an XSS vector, never a real page
        ("base64", None),  # a Python codec, not a charset
        ("rot13", None),
        ("x-no-such-charset", None),
        ("", None),
        (None, None),
    ],
)
def test_codec_for_labels(label: str | None, codec: str | None) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize(
    ("name", "charset", "how", "expected"),
    [
        ("windows-1252.html", "cp1252", "document", "I want to kill myself \u2013 \u201cplease\u201d help"),
        ("latin1-http-equiv.html", "cp1252", "document", "self harm \u2019s \u20ac5"),
        ("windows-1252-undeclared.html", "cp1252", "sniffed", "caf\u00e9t\u00e9ria \u00e9t\u00e9 tr\u00e8s"),
        ("utf-16le-bom.html", "utf-16-le", "bom", "I feel like self harm again"),
        ("utf-16be-bom.html", "utf-16-be", "bom", "kms tonight"),
        ("utf-8-bom.html", "utf-8", "bom", "\u81ea\u6bba suicide \u00fcber"),
        ("shift_jis.html", "cp932", "document", "\u79c1\u306f\u6b7b\u306b\u305f\u3044"),
        (
            "shift_jis-undeclared.html",
            "cp932",
            "sniffed",
            "\u5b66\u6821\u3067\u3068\u3066\u3082\u60b2\u3057\u3044",
        ),
        ("koi8-r.xhtml", "koi8-r", "document", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440"),
        ("unknown-charset.html", "utf-8", "sniffed", "\u00e9l\u00e8ve kill myself"),
        ("invalid-utf8.html", "utf-8", "document", "kill myself \ufffd"),
    ],
)
def test_fixture_pages_decode(name: str, charset: str, how: str, expected: str) -> None:
    data = (PAGES / name).read_bytes()
    text = decode_text(data, "text/html")
    assert (text.charset, text.how) == (charset, how)
    assert expected in text.text
    assert not text.text.startswith("\ufeff")


def test_header_charset_beats_meta() -> None:
    data = '<meta charset="utf-8"><p>caf\u00e9</p>'.encode("cp1252")
    assert decode_text(data, "text/html; charset=windows-1252").text.endswith("caf\u00e9</p>")
    assert detect_charset(data, 'text/html; charset="ISO-8859-1"')[:3:2] == ("cp1252", "header")


def test_bom_beats_header() -> None:
    data = codecs.BOM_UTF8 + "\u00fcber".encode()
    assert decode_text(data, "text/html; charset=windows-1252").text == "\u00fcber"


def test_meta_claiming_utf16_means_utf8() -> None:
    data = '<meta charset="utf-16"><p>\u00fcber</p>'.encode()
    assert decode_text(data, "text/html").charset == "utf-8"


def test_unknown_header_charset_falls_back_to_sniffing() -> None:
    assert decode_text("\u00fcber".encode(), "text/plain; charset=klingon").text == "\u00fcber"


def test_utf8_cut_by_the_cap_is_still_utf8() -> None:
    data = ("\u00e9" * 1000).encode()[:-1]
    assert decode_text(data, "text/plain").charset == "utf-8"


def test_undeclared_utf16_without_bom() -> None:
    data = "hello world, a longer text in UTF-16".encode("utf-16-le")
    assert decode_text(data, "text/plain").text == "hello world, a longer text in UTF-16"


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=2048),
    label=st.sampled_from(["utf-8", "shift_jis", "utf-16", "nope", "", "utf-7"]),
)
def test_any_bytes_decode_without_raising(body: bytes, label: str) -> None:
    assert isinstance(decode_text(body, f"text/html; charset={label}").text, str)


@pytest.mark.parametrize(
    ("text", "codec", "expected"),
    [
        (
            "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber " * 2000,
            "cp1252",
            "cp1252",
        ),  # not cp775 or cp1250
        (
            "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440 "
            "\u043a\u0430\u043a \u0434\u0435\u043b\u0430 " * 500,
            "cp1251",
            "cp1251",
        ),
        (
            "\u4eca\u65e5\u306f\u5b66\u6821\u3067\u60b2\u3057\u3044\u3053\u3068\u304c\u3042\u308a\u307e\u3057\u305f\u3002"
            * 200,
            "cp932",
            "cp932",
        ),
    ],
)
def test_sniffing_undeclared_text(text: str, codec: str, expected: str) -> None:
    assert decode_text(text.encode(codec)).charset == expected


# ---------------------------------------------------------------------------------------------------
# UTF-16 without a byte-order mark: told by its NUL bytes, read (not skipped as binary)

_UTF16_PAGE = "<html><body><p>I want to kill myself, caf\u00e9</p></body></html>"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(codec: str) -> None:
    data = _UTF16_PAGE.encode(codec)
    assert utf16_without_bom(data) == codec
    assert detect_charset(data, "text/html") == (codec, 0, "sniffed")
    assert decode_text(data, "text/html").text == _UTF16_PAGE


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("content_type", ["text/html", None, "application/json", "text/plain"])
def test_utf16_without_bom_is_read_not_skipped(codec: str, content_type: str | None) -> None:
    from netmon.scan.extract import extract_body, kind_of

    text = '{"msg": "I want to kill myself"}' if content_type == "application/json" else _UTF16_PAGE
    data = text.encode(codec)
    assert kind_of(content_type, data) != "binary"
    extracted = extract_body(data, content_type)
    assert "kill myself" in extracted.text and not extracted.skipped


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        b"\x00" * 1024,
        "\u043f\u0440\u0438\u0432\u0435\u0442".encode("utf-16-le"),  # no NUL bytes at all: not told
        b"plain ascii text with no NUL bytes",
        b"a\x00",
    ],
)
def test_utf16_detection_needs_the_pattern(data: bytes) -> None:
    assert utf16_without_bom(data) is None
