"""Steps of the fast normalisation against plain references.

The leetspeak step (``netmon.scan.normalise.fast._leet``): a run of leetspeak digits/symbols with a
letter on either side becomes letters, whole; other numbers stay numbers; any other '@' or '$' is a
space. The decode step finds entities and percent-codes (``_code_pieces``) exactly where the regular
expression's own scan finds them."""

from __future__ import annotations

import random

import numpy as np

from netmon.scan.normalise import normalise, normalise_mapped
from netmon.scan.normalise.fast import (
    _CODED,
    _FEW_MARKS,
    _LEET_CLASSES,
    _LEET_RUN,
    _LEET_RUN_CLASSES,
    _code_pieces,
    _coded,
    _leet,
)
from netmon.scan.normalise.fold import _LEET, fold_char
from netmon.scan.normalise.mapped import _unfold

LEET = b"013457@$"


def _is_letter(byte: int) -> bool:
    return 97 <= byte <= 122 or byte >= 128  # folded ASCII letters and bytes of non-ASCII letters


def reference(data: bytes) -> bytes:
    out = bytearray(data)
    i = 0
    while i < len(data):
        if data[i] not in LEET:
            i += 1
            continue
        j = i
        while j < len(data) and data[j] in LEET:
            j += 1
        if (i > 0 and _is_letter(data[i - 1])) or (j < len(data) and _is_letter(data[j])):
            for k in range(i, j):
                out[k] = ord(_LEET[chr(data[k])])
        i = j
    return bytes(out).replace(b"@", b" ").replace(b"$", b" ")


def test_leet_matches_the_reference_on_random_folded_bytes() -> None:
    rnd = random.Random(16)
    alphabet = b"ak z013457@$ 29.\x80\xc3\xa9"
    for _ in range(50_000):
        data = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert _leet(data) == reference(data), data


def test_leet_runs_are_found_in_the_classes_where_the_bytes_expression_finds_them() -> None:
    rnd = random.Random(17)
    alphabet = bytes(range(256))
    for _ in range(20_000):
        data = bytes(rnd.choice(alphabet if rnd.random() < 0.2 else b"az013@$ \x80\xff") for _ in range(24))
        assert [m.span() for m in _LEET_RUN_CLASSES.finditer(data.translate(_LEET_CLASSES))] == [
            m.span() for m in _LEET_RUN.finditer(data)
        ], data


def test_leet_examples() -> None:
    assert _leet(b"k1ll 5u1c1d3 sh00t @ss 2000 a21 me@ $5") == b"kill suicide shoot ass 2000 a21 mea  5"
    assert normalise("k1ll my$elf in 2026") == "kill myself in 2026"


def test_a_long_number_is_linear() -> None:
    # a run of digits with no letter beside it is rejected once, not once per digit
    data = b"1" * 2_000_000
    assert _leet(data) == data
    assert _leet(b"x" + data) == b"x" + b"i" * len(data)


def test_code_pieces_match_the_regular_expression() -> None:
    rnd = random.Random(16)
    alphabet = [
        "&",
        "%",
        "#",
        "x",
        "X",
        "1",
        "2",
        "a",
        "F",
        ";",
        "amp",
        "eacute",
        "%2",
        "%4",
        "&#",
        "&#x",
        "41",
        " ",
    ]
    for _ in range(30_000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 20)))
        assert _code_pieces(text) == [(m.start(), m.end(), _coded(m)) for m in _CODED.finditer(text)], text
    many = "R&D " * (_FEW_MARKS + 1) + "k&#105;ll %6B%69ll"  # many marks: the regular expression's scan
    assert [p[2] for p in _code_pieces(many)] == ["i", "ki"]


def test_decoded_codes_map_back_to_the_original() -> None:
    text = "Q&A: 100% sure, R&D " * 40 + "I want to k&#105;ll myself %6B%69ll"
    mapped = normalise_mapped(text)
    assert mapped.text == normalise(text)
    start = mapped.text.index("kill myself")
    assert mapped.original_text(start, start + len("kill myself")) == "k&#105;ll myself"
    start = mapped.text.rindex("kill")
    assert mapped.original_text(start, start + 4) == "%6B%69ll"


def test_positions_map_back_through_characters_that_fold_to_several() -> None:
    # the reference: a running count of the folded characters each character produced
    rnd = random.Random(18)
    alphabet = "ab ½™ﬁßé’ℌ\u0130x"
    for _ in range(5_000):
        pre = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 30)))
        ends = np.cumsum([len(fold_char(c)) for c in pre])
        q = np.arange(int(ends[-1]), dtype=np.int64)
        assert _unfold(pre, q).tolist() == np.searchsorted(ends, q, side="right").tolist(), pre
    text = "Price ½ off™ for the ﬁrst kill myself"
    mapped = normalise_mapped(text)
    start = mapped.text.index("kill myself")
    assert mapped.original_text(start, start + len("kill myself")) == "kill myself"
