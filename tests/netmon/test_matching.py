"""The matcher: boundaries, embedded mode, exceptions, co-occurrence, the map back to what the pupil
saw, explanations, and use from worker processes."""

from __future__ import annotations

import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from netmon.scan.findings import Hit
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher, checked_variants, phrase_variants

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "library-mini"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(FIXTURE))


def phrases(hits: tuple[Hit, ...]) -> list[str]:
    return [h.phrase for h in hits]


def make(tmp_path: Path, lines: str, category: str = "violence") -> Matcher:
    root = tmp_path / "library"
    shutil.copytree(FIXTURE, root)
    for path in root.glob("*/*.txt"):
        path.unlink()
    (root / "en").mkdir(exist_ok=True)
    (root / "en" / f"{category}.txt").write_text(f"@category {category}\n@language en\n{lines}\n")
    return Matcher.compile(load_library(root))


# -- whole words and embedded ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I will stab him", ["stab"]),
        ("Stab.", ["stab"]),
        ("stab", ["stab"]),
        ("(stab)", ["stab"]),
        ("stabbing", []),  # whole word only
        ("stable genius", []),
        ("mistab", []),
        ("you are a loser", ["loser"]),
        ("losers", []),
        ("skill", []),  # "kill" inside a word
        ("killer whale", []),
    ],
)
def test_whole_word_boundaries(matcher: Matcher, text: str, found: list[str]) -> None:
    assert phrases(matcher.scan(text)) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("you cunt", ["cunt"]),
        ("cuntface", ["cunt"]),  # embedded: inside other words too
        ("Scunthorpe United", []),  # the exception
        ("I live in scunthorpe", []),
    ],
)
def test_embedded_and_its_exception(matcher: Matcher, text: str, found: list[str]) -> None:
    assert phrases(matcher.scan(text)) == found


# -- exceptions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I will kill you", ["kill"]),
        ("just kill the process", []),
        ("KILL THE PROCESS!", []),
        ("the kill switch", []),
        ("kill the process, then I will kill you", ["kill"]),  # the second one stands
        ("I'd kill myself laughing", ["kill"]),  # "kill myself" is cancelled, "kill" has no such exception
        ("I want to kill myself", ["kill", "kill myself"]),
        ("suicide squad is a film", []),
        ("thinking about suicide", ["suicide"]),
    ],
)
def test_exceptions_cancel_only_the_hit_they_overlap(matcher: Matcher, text: str, found: list[str]) -> None:
    assert sorted(phrases(matcher.scan(text))) == found


def test_exception_rule_is_explained(matcher: Matcher) -> None:
    (hit,) = matcher.scan("I will kill you")
    assert hit.rules == ("exceptions absent: 'kill the process', 'kill switch'",)


def test_kill_myself_also_finds_kill(matcher: Matcher) -> None:
    hits = matcher.scan("I want to kill myself")
    assert sorted(phrases(hits)) == ["kill", "kill myself"]
    top = max(hits, key=lambda h: h.severity)
    assert (top.phrase, top.severity, top.category) == ("kill myself", 5, "suicide")


# -- co-occurrence ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("let's shoot some hoops", []),
        ("I'm going to shoot everyone", ["shoot"]),
        (
            "I'll shoot. The whole school deserves it, every single teacher.",
            ["shoot"],
        ),  # anywhere on the page
        ("school trip: we shoot a film", ["shoot"]),
    ],
)
def test_co_occurrence_anywhere(matcher: Matcher, text: str, found: list[str]) -> None:
    assert phrases(matcher.scan(text)) == found


def test_co_occurrence_within(matcher: Matcher) -> None:
    assert phrases(matcher.scan("did sh again, the blade was right there")) == ["sh"]
    far = "did sh again. " + "nothing to see here " * 5 + "the blade was in the kitchen drawer"
    assert phrases(matcher.scan(far)) == []
    assert phrases(matcher.scan("sh")) == []
    (hit,) = matcher.scan("scars from sh")
    assert hit.rules == ("co-occurrence 'scars' present within 40 (6 characters away)",)


def test_co_occurrence_without_within_is_explained(matcher: Matcher) -> None:
    (hit,) = matcher.scan("shoot everyone")
    assert hit.rules == ("co-occurrence 'everyone' present",)


def test_a_word_of_the_hit_is_not_its_own_co_occurrence(tmp_path: Path) -> None:
    m = make(tmp_path, "cutting deep | 3 | with: cutting, deep")
    assert phrases(m.scan("cutting deep")) == []
    assert phrases(m.scan("cutting deep, deep")) == ["cutting deep"]


# -- normalisation in matches, mapped back to what the pupil saw ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase", "seen", "steps"),
    [
        ("i want to k!ll mysеlf", "kill myself", "k!ll mysеlf", ("homoglyph", "leetspeak")),
        ("I want to KILL MYSELF", "kill myself", "KILL MYSELF", ()),
        ("s u i c i d e", "suicide", "s u i c i d e", ("spaced-letters",)),
        ("S.U.I.C.I.D.E", "suicide", "S.U.I.C.I.D.E", ("spaced-letters",)),
        ("5u1c1d3", "suicide", "5u1c1d3", ("leetspeak",)),
        ("i want to diiiiiie", "want to die", "want to diiiiiie", ("repeats",)),
        ("I wanna kiiiill myself", "kill myself", "kiiiill myself", ("repeats",)),
        ("ki11 myself", "kill myself", "ki11 myself", ("leetspeak",)),
        ("k1ll mys3lf", "kill myself", "k1ll mys3lf", ("leetspeak",)),
        ("ki11 mys3if", "kill myself", "ki11 mys3if", ("leetspeak",)),
        ("k&#105;ll myself", "kill myself", "k&#105;ll myself", ("html-entity",)),
        ("kill%20myself", "kill myself", "kill%20myself", ("percent-decoding",)),
        ("ｋｉｌｌ ｍｙｓｅｌｆ", "kill myself", "ｋｉｌｌ ｍｙｓｅｌｆ", ("nfkc",)),
        ("ki\u200bll myself", "kill myself", "ki\u200bll myself", ("zero-width",)),
        ("k i l l m y s e l f", "kill myself", "k i l l m y s e l f", ("spaced-letters",)),
        ("#killmyself", "kill myself", "killmyself", ()),
        ("Selbstmord? No: sélf hàrm", "self harm", "sélf hàrm", ("diacritics",)),
        ("Dw i eisiau marw", "eisiau marw", "eisiau marw", ()),
        # issue 14: "1" for one "l" of two, runs of several letters, the word "a" before spaced letters
        ("ki1l myself", "kill myself", "ki1l myself", ("leetspeak",)),
        ("k1il myself", "kill myself", "k1il myself", ("leetspeak",)),
        ("kil1 mys3lf", "kill myself", "kil1 mys3lf", ("leetspeak",)),
        ("ki1lmyse1f", "kill myself", "ki1lmyse1f", ("leetspeak",)),
        ("kiiilllll myself", "kill myself", "kiiilllll myself", ("repeats",)),
        ("i will kiiiilllll myseeeelf", "kill myself", "kiiiilllll myseeeelf", ("repeats",)),
        ("shhhooooot everyone", "shoot", "shhhooooot", ("repeats",)),
        ("i k i l l m y s e l f", "kill myself", "k i l l m y s e l f", ("spaced-letters",)),
    ],
)
def test_hit_maps_back_to_the_original(
    matcher: Matcher, text: str, phrase: str, seen: str, steps: tuple[str, ...]
) -> None:
    hits = [h for h in matcher.scan(text) if h.phrase == phrase]
    assert len(hits) == 1, matcher.scan(text)
    hit = hits[0]
    assert hit.matched_text == seen
    assert text[hit.start : hit.end] == seen
    assert hit.steps == steps


def test_hit_carries_where_it_came_from(matcher: Matcher) -> None:
    (hit,) = matcher.scan("lladd fy hun")
    assert (hit.category, hit.severity, hit.language, hit.library_file, hit.line) == (
        "suicide",
        5,
        "cy",
        "cy/suicide.txt",
        4,
    )


def test_several_hits_in_one_text(matcher: Matcher) -> None:
    text = "loser. I want to die. Loser!"
    hits = matcher.scan(text)
    assert [(h.phrase, h.matched_text, h.start) for h in hits] == [
        ("loser", "loser", 0),
        ("want to die", "want to die", 9),
        ("loser", "Loser", 22),
    ]


def test_benign_text_gives_nothing(matcher: Matcher) -> None:
    text = "The school library opens at 9. Skills club: killer sudoku, stable diffusion, Scunthorpe trip."
    assert matcher.scan(text) == ()
    assert matcher.scan("") == ()
    assert matcher.scan("!!! ...") == ()


@pytest.mark.parametrize(
    ("text", "phrase", "seen"),
    [
        ("a k.n.i.f.e", "knife", "k.n.i.f.e"),
        ("a k n i f e", "knife", "k n i f e"),
        ("got a k-n-i-f-e", "knife", "k-n-i-f-e"),
        ("i have a k n i f e", "knife", "k n i f e"),
        ("a n x i e t y", "anxiety", "a n x i e t y"),  # "a nxiety": the first letter stays a word
        ("i d i o t", "idiot", "i d i o t"),
        ("such an i.d.i.o.t", "idiot", "i.d.i.o.t"),
    ],
)
def test_spaced_letters_after_the_word_a_or_i(tmp_path: Path, text: str, phrase: str, seen: str) -> None:
    m = make(tmp_path, "knife | 3\nanxiety | 3\nidiot | 3")
    (hit,) = m.scan(text)
    assert (hit.phrase, hit.matched_text, hit.steps) == (phrase, seen, ("spaced-letters",))


@pytest.mark.parametrize(
    "text",
    [
        "a lone wolf",  # "alone" is only "a lone" when its letters were spaced
        "i diot",
        "heli pad",  # "hell" read with one "l" as "i" needs the "1" in the text
        "kili and fili",
        "a n x i o u s",
        "Kiiiiiiilll",  # "kiiilll" squeezed: "kil", "kill", "kiil": only "kill" is a phrase word
        "www.example.com aaa bbb",
        "aaabbbcccdddeeefffggghhhiiijjjkkklll mmmooo",  # many runs in a word
        "kkkkiiiilllllllllll" * 40,  # the numpy path
    ],
)
def test_checked_spellings_need_their_step(tmp_path: Path, text: str) -> None:
    m = make(tmp_path, "alone | 3\nidiot | 3\nhell | 3\nkill | 3\nanxiety | 3")
    found = phrases(m.scan(text))
    assert found == (["kill"] if text.startswith("Kii") else [])


def test_checked_variants() -> None:
    assert checked_variants("knife") == {}
    assert checked_variants("anxiety") == {"a nxiety": "spaced-letters"}
    kill = checked_variants("kill")
    assert kill == {"kiil": "leetspeak", "kili": "leetspeak"}
    assert "kiii" in phrase_variants("kill")  # every "l" read as "i" needs no check (as before)
    assert checked_variants("kill myself")["kiil myself"] == "leetspeak"


def test_phrase_variants() -> None:
    assert phrase_variants("kill myself") == (
        "kill myself",
        "kiii myself",
        "kill myseif",
        "kiii myseif",
        "killmyself",
    )
    assert phrase_variants("stab") == ("stab",)


def test_an_entry_in_two_categories_gives_two_hits(tmp_path: Path) -> None:
    root = tmp_path / "library"
    shutil.copytree(FIXTURE, root)
    (root / "en" / "self_harm.txt").write_text("@category self_harm\n@language en\nkill myself | 4\n")
    m = Matcher.compile(load_library(root))
    assert sorted((h.category, h.severity) for h in m.scan("kill myself") if h.phrase == "kill myself") == [
        ("self_harm", 4),
        ("suicide", 5),
    ]


# -- compiled once, shared with worker processes ----------------------------------------------------


def test_fingerprint(matcher: Matcher) -> None:
    assert matcher.fingerprint == load_library(FIXTURE).fingerprint


def test_pickles_for_worker_processes(matcher: Matcher) -> None:
    clone = pickle.loads(pickle.dumps(matcher))  # noqa: S301 - our own bytes
    assert clone.fingerprint == matcher.fingerprint
    assert clone.scan("i want to k!ll mysеlf") == matcher.scan("i want to k!ll mysеlf")


def _scan_in_worker(matcher: Matcher, text: str) -> tuple[Hit, ...]:
    return matcher.scan(text)


def _load_and_scan(root: str, text: str) -> tuple[Hit, ...]:
    return Matcher.compile(load_library(Path(root))).scan(text)


def test_scan_in_a_process_pool(matcher: Matcher) -> None:
    text = "I'm going to shoot everyone, k!ll mysеlf"
    with ProcessPoolExecutor(max_workers=1) as pool:
        sent = pool.submit(_scan_in_worker, matcher, text).result(timeout=120)
        loaded = pool.submit(_load_and_scan, str(FIXTURE), text).result(timeout=120)
    assert sent == loaded == matcher.scan(text)
    assert sorted(phrases(sent)) == ["kill", "kill myself", "shoot"]


@pytest.mark.parametrize("padding", [0, 40])
def test_long_and_short_texts_agree(matcher: Matcher, padding: int) -> None:
    """Texts over 512 characters take the numpy path: same hits, same offsets."""
    filler = "Nothing to see on this page, just ordinary words about the weather. " * padding
    tail = "I want to diiiiie, k!ll mysеlf; s u i c i d e. www.example.com says loser and Scunthorpe."
    hits = matcher.scan(filler + tail)
    assert [(h.phrase, h.matched_text) for h in hits] == [
        ("want to die", "want to diiiiie"),
        ("kill myself", "k!ll mysеlf"),
        ("kill", "k!ll"),
        ("suicide", "s u i c i d e"),
        ("loser", "loser"),
    ]
    for hit in hits:
        assert (filler + tail)[hit.start : hit.end] == hit.matched_text
