"""The normaliser: every step on phrases and on traffic, the map back to the original text, and the
fast path proved equal to a plain regular-expression definition of the same steps."""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netmon.scan.normalise import STEPS, fold_char, normalise, normalise_mapped, steps_applied

# -- every step, both ways: the phrase as a library author writes it, and traffic as a pupil types it --

STEP_CASES = [
    # (step, phrase, traffic)
    ("html-entity", "kill myself", "k&#105;ll my&shy;self"),
    ("html-entity", "café", "caf&eacute;"),
    ("percent-decoding", "kill myself", "kill%20my%73elf"),
    ("nfkc", "kill myself", "ｋｉｌｌ ｍｙｓｅｌｆ"),  # fullwidth
    ("nfkc", "kill myself", "𝐤𝐢𝐥𝐥 𝓂𝓎𝓈ℯ𝓁𝒻"),  # mathematical letters
    ("nfkc", "fine", "ﬁne"),  # ligature
    ("diacritics", "self harm", "sélf hàrm"),
    ("diacritics", "lladd fy hun", "lládd fŷ hûn"),
    ("homoglyph", "kill myself", "kill mysеlf"),  # Cyrillic е
    ("homoglyph", "cocaine", "сосаіnе"),  # Cyrillic с о а і е
    ("homoglyph", "kill", "ᴋɪʟʟ"),  # small capitals
    ("zero-width", "kill myself", "ki\u200bll my\u200dself"),
    ("zero-width", "suicide", "sui\u00adcide"),  # soft hyphen
    ("leetspeak", "suicide", "5u1c1d3"),
    ("leetspeak", "kill myself", "k!ll mys3lf"),
    ("leetspeak", "ass", "@ss"),
    ("leetspeak", "ass", "a$$"),
    ("leetspeak", "shoot", "sh00t"),
    ("leetspeak", "tasty", "7@sty"),
    ("spaced-letters", "suicide", "s u i c i d e"),
    ("spaced-letters", "suicide", "s.u.i.c.i.d.e"),
    ("spaced-letters", "suicide", "s-u-i-c-i-d-e"),
    ("repeats", "killl", "killllllll"),
    ("repeats", "nooo", "NOOOOOOO"),
    ("case", "kill myself", "KILL MySelf"),
    ("punctuation", "kill myself", "kill...myself!!!"),
    ("punctuation", "kill myself", "  kill\n\t myself  "),
    ("apostrophe", "dont tell", "don't tell"),
    ("apostrophe", "dont tell", "don’t tell"),
]


@pytest.mark.parametrize(
    ("step", "phrase", "traffic"), STEP_CASES, ids=[f"{c[0]}:{c[2]}" for c in STEP_CASES]
)
def test_step_applies_to_phrase_and_traffic(step: str, phrase: str, traffic: str) -> None:
    assert normalise(traffic) == normalise(phrase)
    # the phrase side: a phrase written with the same trick normalises the same way
    assert normalise(normalise(traffic)) == normalise(phrase)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("!!!", ""),
        ("Hello, World!", "hello world"),
        ("in 2000 we paid $5", "in 2000 we paid 5"),  # numbers stay numbers
        ("1st B1 mp3", "ist bi mpe"),  # digits next to letters are leetspeak
        ("I a m", "iam"),  # three lone letters join
        ("a b", "a b"),  # two do not
        ("wow! great", "wow great"),
        ("me@example.com", "meaexample com"),
        ("Straße", "strasse"),
        ("it’s … fine", "its fine"),
        ("&#37;41", "41"),  # decoded once only
        # issue 14: what the normaliser does with the forms; the matcher does the rest (test_matching)
        ("ki1l myself", "kiil myself"),  # "1" is read as "i"; the matcher indexes "kiil" for "kill"
        ("kiiilllll myself", "kiiilll myself"),  # each run keeps three; the matcher squeezes each run
        ("a k.n.i.f.e", "a knife"),  # the word "a" before four or more spaced letters stays a word
        ("a k n i f e", "a knife"),
        ("a k-n-i-f-e", "a knife"),
        ("k.n.i.f.e", "knife"),
        ("I K I L L", "i kill"),
        ("i a m", "iam"),  # three letters: all joined, as before
        ("a s s", "ass"),
        ("x a n a l", "xanal"),  # only a chain's first letter is kept apart
        ("go i a b c", "go i abc"),
    ],
)
def test_normalise_table(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("kill", ()),
        ("k!ll mysеlf", ("homoglyph", "leetspeak")),
        ("s u i c i d e", ("spaced-letters",)),
        ("killllll", ("repeats",)),
        ("k&#105;ll", ("html-entity",)),
        ("kill%20me", ("percent-decoding",)),
        ("ｋｉｌｌ", ("nfkc",)),
        ("sélf", ("diacritics",)),
        ("ki\u200bll", ("zero-width",)),
        ("5u1c1d3", ("leetspeak",)),
        ("ki1l", ("leetspeak",)),
        ("kiiilllll", ("repeats",)),
        ("k.n.i.f.e", ("spaced-letters",)),
        ("a k n i f e", ("spaced-letters",)),
        ("a lone", ()),
    ],
)
def test_steps_applied_names_the_steps(text: str, steps: tuple[str, ...]) -> None:
    assert steps_applied(text) == steps
    assert set(steps) <= set(STEPS)


# -- the map back to what the pupil saw ------------------------------------------------------------


def _find(mapped_text: str, needle: str) -> tuple[int, int]:
    start = mapped_text.index(needle)
    return start, start + len(needle)


@pytest.mark.parametrize(
    ("text", "phrase", "seen"),
    [
        ("I want to k!ll mysеlf tonight", "kill myself", "k!ll mysеlf"),
        ("so... S U I C I D E?", "suicide", "S U I C I D E"),
        ("I want to diiiiiiie", "want to diiie", "want to diiiiiiie"),
        ("k&#105;ll my&shy;self now", "kill myself", "k&#105;ll my&shy;self"),
        ("ｋｉｌｌ ｍｅ", "kill me", "ｋｉｌｌ ｍｅ"),
        ("don’t tell mum", "dont tell", "don’t tell"),
        ("Straße kill", "kill", "kill"),
        ("ﬁne then, kill", "kill", "kill"),
        ("\u200bki\u200bll\u200b", "kill", "ki\u200bll"),
        ("got a k.n.i.f.e", "knife", "k.n.i.f.e"),
        ("a k n i f e " * 60, "a knife", "a k n i f e"),  # the numpy path
        ("kiiilllll", "kiiilll", "kiiilllll"),
    ],
)
def test_mapped_span_shows_the_original(text: str, phrase: str, seen: str) -> None:
    mapped = normalise_mapped(text)
    assert mapped.text == normalise(text)
    a, b = _find(mapped.text, phrase)
    assert mapped.original_text(a, b) == seen
    start, end = mapped.span(a, b)
    assert text[start:end] == seen
    assert mapped.offsets[a] == start


def test_offsets_cover_every_character() -> None:
    text = "Ké!ll  &amp; s u i c i d e ЅЕLF"
    mapped = normalise_mapped(text)
    assert len(mapped.offsets) == len(mapped.ends) == len(mapped.text)
    assert list(mapped.offsets) == sorted(mapped.offsets)
    for i in range(len(mapped.text)):
        assert 0 <= mapped.offsets[i] < mapped.ends[i] <= len(text)


# -- properties ---------------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    list("aAbkKlLiIsSeE1!0345 7@$'`.-,\n\t&;#%2")
    + [
        "&amp;",
        "&#105;",
        "&eacute;",
        "%6B",
        "%20",
        "е",
        "ο",
        "\u200b",
        "’",
        "é",
        "ß",
        "ﬁ",
        "ｋ",
        "дд",
        "ا",
        "٣",
        "\u0301",
        "𝐤",
        "!!",
        "  ",
        "llll",
        "Ⅻ",
        "½",
        "…",
        "ddd",
    ]
)
_TEXTS = st.lists(_PIECES, max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_TEXTS, st.text(max_size=60)))
def test_fast_path_equals_mapped_path(text: str) -> None:
    mapped = normalise_mapped(text)
    assert mapped.text == normalise(text)
    assert len(mapped.offsets) == len(mapped.text)
    assert all(0 <= a < b <= len(text) for a, b in zip(mapped.starts, mapped.ends, strict=True))


# A plain, slow definition of the same steps with regular expressions: the fast path (byte tables and
# numpy masks) must agree with it on every input.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")
_CODED = re.compile(f"{_ENTITY.pattern}|{_PERCENT.pattern}")
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}


def reference_normalise(text: str) -> str:
    text = _CODED.sub(
        lambda m: (
            html.unescape(m.group())
            if m.group().startswith("&")
            else unquote_to_bytes(m.group()).decode("utf-8", "replace")
        ),
        text,
    )
    s = "".join(fold_char(c) for c in text)

    def bang(m: re.Match[str]) -> str:
        inside = m.start() > 0 and m.end() < len(s) and s[m.start() - 1].isalnum() and s[m.end()].isalnum()
        return ("i" if inside else " ") * len(m.group())

    s = re.sub(r"!+", bang, s)

    def leet(m: re.Match[str]) -> str:
        a, b = m.span()
        letter = re.compile(r"[a-z]|[^\x00-\x7f]")
        near = (a > 0 and letter.match(s[a - 1])) or (b < len(s) and letter.match(s[b]))
        return "".join(_LEET[c] for c in m.group()) if near else re.sub(r"[@$]", " ", m.group())

    s = re.sub(r"[013457@$]+", leet, s)
    s = s.replace("'", "")
    s = re.sub(" +", " ", s).strip(" ")

    def spaced(m: re.Match[str]) -> str:
        letters = m.group(1).split(" ")
        if letters[0] in ("a", "i") and len(letters) >= 4:  # the word "a" or "i" stays apart: "a knife"
            return f" {letters[0]} " + "".join(letters[1:])
        return " " + "".join(letters)

    s = re.sub(r" ([^\W\d_](?: [^\W\d_]){2,})(?= )", spaced, f" {s} ")
    return re.sub(r"(\w)\1{3,}", lambda m: m.group(1) * 3, s).strip(" ")


@settings(max_examples=400, deadline=None)
@given(st.one_of(_TEXTS, st.text(max_size=60)))
def test_fast_path_equals_reference_definition(text: str) -> None:
    assert normalise(text) == reference_normalise(text)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_TEXTS, st.text(max_size=40)), min_size=1, max_size=8), st.integers(1, 40))
def test_long_texts_take_the_numpy_path_and_agree(parts: list[str], times: int) -> None:
    text = " x ".join(parts) * times  # long texts (over 512 bytes) use numpy masks instead of str methods
    expected = reference_normalise(text)
    assert normalise(text) == expected
    assert normalise_mapped(text).text == expected


_WORDISH = st.lists(
    st.sampled_from(
        [
            "kill",
            "KiLL",
            "k1ll",
            "k!ll",
            "mysеlf",
            "s u i c i d e",
            "diiiiie",
            "sh00t",
            "don’t",
            "ﬁne",
            "ｋｉｌｌ",
            "ki\u200bll",
            " ",
            ", ",
            "... ",
            "\n",
            "Straße",
        ]
    ),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_WORDISH)
def test_each_word_maps_back_to_text_that_normalises_to_it(text: str) -> None:
    mapped = normalise_mapped(text)
    position = 0
    for word in mapped.text.split(" "):
        a, b = position, position + len(word)
        position = b + 1
        assert normalise(mapped.original_text(a, b)) == word


def test_fold_char_is_cached_and_plain() -> None:
    assert fold_char("É") == "e"
    assert fold_char("\u200b") == "'"  # the placeholder of a deleted character
    assert unicodedata.category(fold_char("д")) == "Ll"


@pytest.mark.parametrize(
    "text", ["ki\udc80ll", "\ud800", "a\x00b\x1fc", "xxx\x85kill", "\ufeffkill", "k" * 5000]
)
def test_odd_input_never_breaks(text: str) -> None:
    mapped = normalise_mapped(text)
    assert mapped.text == normalise(text)
    if mapped.text:
        start, end = mapped.span(0, len(mapped.text))
        assert 0 <= start < end <= len(text)


@pytest.mark.parametrize(
    "text",
    [
        "R&D and AT&T " * 80 + "k&#105;ll",  # more ampersands than the quick check looks at
        "100% sure, 50 %, %zz then kill%20myself",
        "fish & chips &amp; k&#x69;ll",
    ],
)
def test_codes_after_many_lookalike_marks_are_still_decoded(text: str) -> None:
    norm = normalise(text)
    assert "kill" in norm
    assert normalise_mapped(text).text == norm
