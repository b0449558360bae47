"""Native-script folding (issue 14): Arabic script (Arabic, Urdu, Shahmukhi), Bengali and Gurmukhi, and
the Latin diacritics of Lithuanian, Portuguese and Spanish. Each spelling variant a pupil may type must
normalise exactly as the library's phrase does; letters that make different words must stay apart."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netmon.scan.normalise import normalise, normalise_mapped

SAME = [
    # (what, as the library writes it, as a pupil may type it)
    ("tashkeel", "اريد ان اموت", "أُرِيدُ أَنْ أَمُوتَ"),
    ("shadda and sukun", "اقتل نفسي", "اقْتُلّ نَفْسِي"),
    ("tatweel", "انتحر", "انتحـــــر"),
    ("tatweel and tashkeel", "انتحر", "اِنْتَحـــَر"),
    ("alef with hamza above", "اريد", "أريد"),
    ("alef with hamza below", "انهي", "إنهي"),
    ("alef with madda", "اخر", "آخر"),
    ("alef wasla", "الموت", "ٱلموت"),
    ("Persian yeh vs Arabic yeh", "ميں", "میں"),
    ("alef maksura vs yeh", "ابغي", "ابغى"),
    ("yeh with hamza", "گيے", "گئے"),
    ("keheh vs Arabic kaf", "خودكشي", "خودکشی"),
    ("heh goal vs heh", "هوں", "ہوں"),
    ("heh doachashmee vs heh", "بهيجو", "بھیجو"),
    ("teh marbuta vs heh", "حياه", "حياة"),
    ("noon ghunna vs noon", "ہون", "ہوں"),
    ("waw with hamza", "اوذي", "أؤذي"),
    ("lam-alef ligature", "لا", "\ufefb"),
    ("Arabic comma is a word break", "مرنا چاہتا", "مرنا،چاہتا"),
    ("Arabic question mark", "كيف انتحر", "كيف انتحر؟"),
    ("Urdu full stop", "مرنا چاہتا", "مرنا چاہتا۔"),
    ("zero-width non-joiner (Persian/Urdu)", "ميخواهم", "می\u200cخواهم"),
    ("Arabic-Indic digits", "3 حبات", "٣ حبات"),
    ("Eastern (Urdu) digits", "10 گولیاں", "۱۰ گولیاں"),
    ("Bengali digits", "20", "২০"),
    ("Gurmukhi digits", "15", "੧੫"),
    ("Bengali ya with nukta, composed or not", "হয়", "হয\u09bc"),
    ("Bengali ya with nukta folds to ya", "হয", "হয়"),
    ("Bengali rra composed or not", "পড়", "পড\u09bc"),
    ("Bengali o sign, one code point or two", "মো", "ম\u09c7\u09be"),
    ("Bengali long and short i", "নদি", "নদী"),
    ("Bengali chandrabindu", "বাচতে", "বাঁচতে"),
    ("Bengali zero-width joiner", "আত্মহত্যা", "আত্\u200dমহত্যা"),
    ("Bengali khanda ta", "হঠাত", "হঠাৎ"),
    ("Gurmukhi sha: nukta composed, decomposed, or left out", "ਖੁਦਕੁਸ਼ੀ", "ਖ਼ੁਦਕੁਸ\u0a3cੀ"),
    ("Gurmukhi nukta left out", "ਖੁਦਕੁਸੀ", "ਖ਼ੁਦਕੁਸ਼ੀ"),
    ("Gurmukhi tippi vs bindi", "ਚਾਹੁੰਦਾ", "ਚਾਹੁਂਦਾ"),
    ("Gurmukhi addak left out", "ਕਟ", "ਕੱਟ"),
    ("Gurmukhi long and short u", "ਖੂਦ", "ਖੁਦ"),
    ("Lithuanian", "nusizudyti", "nusižudyti"),
    ("Lithuanian ogonek and dot", "savizudybe", "savižudybę"),
    ("Lithuanian upper case", "noriu mirti", "NORIU MIRTI"),
    ("Portuguese tilde and cedilla", "nao aguento", "não aguento"),
    ("Portuguese", "prevencao", "prevenção"),
    ("Spanish eñe", "dano", "daño"),
    ("Spanish inverted marks", "como matarme", "¿Cómo matarme?"),
    ("Spanish acute", "autolesion", "autolesión"),
]


@pytest.mark.parametrize(("what", "phrase", "typed"), SAME, ids=[s[0] for s in SAME])
def test_variant_normalises_as_the_phrase(what: str, phrase: str, typed: str) -> None:
    assert normalise(typed) == normalise(phrase), what


APART = [
    # (why these must stay different, a, b)
    ("Bengali: to die vs to hit/kill keep their vowel signs", "মরতে চাই", "মারতে চাই"),
    ("Gurmukhi: vowel signs are kept", "ਮਰ", "ਮਾਰ"),
    ("Urdu yeh barree is not yeh", "گئے", "گئی"),
    ("Arabic: different letters stay different", "قتل", "قبل"),
]


@pytest.mark.parametrize(("why", "a", "b"), APART, ids=[s[0] for s in APART])
def test_different_words_stay_apart(why: str, a: str, b: str) -> None:
    assert normalise(a) != normalise(b), why


def test_vowel_signs_become_letters_so_a_word_stays_one_word() -> None:
    # a vowel sign is a combining mark; folded to its vowel letter, it is a letter like the rest, so the
    # word has no break inside it and the spaced-letters step never sees a lone mark
    for word in ("মরতে", "ਮਰਨਾ", "আত্মহত্যা", "ਚਾਹੁੰਦਾ"):
        norm = normalise(word)
        assert " " not in norm and norm.isalpha(), (word, norm)


@pytest.mark.parametrize(
    ("text", "phrase", "seen"),
    [
        # a mark after the last letter is not part of the span (as a trailing zero-width character is not)
        ("هو قال: أُرِيدُ أَنْ أَمُوتَ!", "اريد ان اموت", "أُرِيدُ أَنْ أَمُوت"),
        ("ok ابغى انتحـــر", "انتحر", "انتحـــر"),
        ("আমি মরে যেতে চাই।", "মরে যেতে চাই", "মরে যেতে চাই"),
        ("ਮੈਂ ਖ਼ੁਦਕੁਸ਼ੀ ਕਰ ਲੈਣੀ ਆ", "ਖੁਦਕੁਸ਼ੀ", "ਖ਼ੁਦਕੁਸ਼ੀ"),
    ],
)
def test_a_match_maps_back_to_what_the_pupil_typed(text: str, phrase: str, seen: str) -> None:
    mapped = normalise_mapped(text)
    target = normalise(phrase)
    start = mapped.text.index(target)
    assert mapped.original_text(start, start + len(target)) == seen


_PIECES = st.sampled_from(
    [
        "أُرِيدُ",
        "انتحـــر",
        "ـ",
        "\u064b",
        "ی",
        "ک",
        "ھ",
        "ة",
        "ں",
        "٣",
        "۳",
        "،",
        "আত্মহত্যা",
        "মো",
        "ম\u09c7\u09be",
        "হয়",
        "ৎ",
        "২",
        "\u09cd",
        "\u09be",
        "ਖ਼ੁਦਕੁਸ਼ੀ",
        "ੰ",
        "ੱ",
        "\u0a3c",
        "੩",
        "\u200c",
        "\u200d",
        "nusižudyti",
        "¿ñ?",
        " ",
        "a",
        "1",
        "!",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join), st.sampled_from([1, 30]))
def test_fast_and_mapped_paths_agree_on_these_scripts(text: str, times: int) -> None:
    text *= times  # short texts take the str path, long ones numpy's
    mapped = normalise_mapped(text)
    assert mapped.text == normalise(text)
    assert all(0 <= a < b <= len(text) for a, b in zip(mapped.starts, mapped.ends, strict=True))
