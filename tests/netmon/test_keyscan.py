"""The matcher's key pass (netmon.scan.keyscan): hyperscan finds exactly what pyahocorasick finds, in the
same order; the matcher's hits are the same with hyperscan and without it; and without hyperscan (an
ARM gateway: the module does not import) netmon still catches every disguise."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.scan import keyscan
from netmon.scan.keyscan import KeyScan, hyperscan_available
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher, phrase_variants

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "library-mini"
REPO = Path(__file__).resolve().parents[2]

#: Disguised spellings the matcher must catch (each with the phrase it is), with filler around them
#: long enough (> 512 characters) for the long-text path too.
DISGUISED = [
    ("k.i.l.l myself", "kill myself"),
    ("ki1l myself", "kill myself"),
    ("ki11 mys3if", "kill myself"),
    ("k&#105;ll myself", "kill myself"),
    ("kill%20myself", "kill myself"),
    ("ｋｉｌｌ ｍｙｓｅｌｆ", "kill myself"),
    ("ki\u200bll myself", "kill myself"),
    ("kiiilllll myself", "kill myself"),
    ("i k i l l m y s e l f", "kill myself"),
    ("#killmyself", "kill myself"),
    ("S.U.I.C.I.D.E", "suicide"),
    ("5u1c1d3", "suicide"),
    ("shhhooooot everyone", "shoot"),
    ("sélf hàrm", "self harm"),
    ("kms", "kms"),
]
FILLER = "The class read about the water cycle and wrote notes on rivers, clouds and rain. " * 8

needs_hyperscan = pytest.mark.skipif(not hyperscan_available(), reason="hyperscan does not import here")


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    return Matcher.compile(load_library(DEFAULT_LIBRARY_DIR))


def texts_for(matcher: Matcher) -> list[str]:
    """Every spelling the library indexes, disguised phrases, filler, and both joined into long texts."""
    spellings = [v for e in matcher.entries for v in phrase_variants(e.normalised)]
    short = [f" {s} " for s in spellings] + [f" {d} " for d, _ in DISGUISED] + [f" {FILLER} "]
    joined = " ".join(spellings)
    long = [f" {joined[i : i + 5000]} " for i in range(0, len(joined), 5000)]
    return short + long + [f" {FILLER} {d} {FILLER} " for d, _ in DISGUISED]


@needs_hyperscan
def test_hyperscan_finds_what_pyahocorasick_finds_in_the_same_order(shipped: Matcher) -> None:
    scan = shipped._key_scan
    assert scan.backend == "hyperscan"
    for text in texts_for(shipped):
        assert scan.iter(text) == list(scan.automaton.iter(text)), text[:80]


def test_keys_sharing_an_end_come_longest_first() -> None:
    keys = [" kill myself ", "myself ", "f ", " kill "]
    scan = KeyScan(keys)
    text = " i will kill myself "
    found = scan.iter(text)
    assert found == list(scan.automaton.iter(text))
    ends = {end for end, _ in found}
    assert [keys[v] for end, v in found if end == max(ends)] == [" kill myself ", "myself ", "f "]


def test_keys_and_text_in_other_scripts() -> None:
    keys = [" kill ", " ниж ", " دل كرتا "]
    scan = KeyScan(keys)
    for text in (" kill ниж ", " kill дл ", " دل كرتا kill ", " kill ", " "):
        assert scan.iter(text) == list(scan.automaton.iter(text)), text
    assert [keys[v] for _, v in scan.iter(" kill ниж ")] == [" kill ", " ниж "]
    assert KeyScan([]).iter(" kill ") == []


@needs_hyperscan
@pytest.mark.parametrize("library", [FIXTURE, DEFAULT_LIBRARY_DIR], ids=["mini", "shipped"])
def test_matcher_hits_are_the_same_without_hyperscan(monkeypatch: pytest.MonkeyPatch, library: Path) -> None:
    loaded = load_library(library)
    fast = Matcher.compile(loaded)
    monkeypatch.setattr(keyscan, "_hs", None)  # as on a machine without the wheel
    plain = Matcher.compile(loaded)
    assert (fast._key_scan.backend, plain._key_scan.backend) == ("hyperscan", "pyahocorasick")
    texts = [t.strip() for t in texts_for(fast)]
    for text in texts[:: max(1, len(texts) // 400)] + [f"{FILLER} {d} {FILLER}" for d, _ in DISGUISED]:
        assert fast.scan(text, limit=201, grammar=False) == plain.scan(text, limit=201, grammar=False)
        assert fast.scan(text) == plain.scan(text)


@pytest.mark.parametrize("backend", ["hyperscan", "pyahocorasick"])
def test_disguises_are_caught_on_either_backend(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    if backend == "hyperscan" and not hyperscan_available():
        pytest.skip("hyperscan does not import here")
    if backend == "pyahocorasick":
        monkeypatch.setattr(keyscan, "_hs", None)
    matcher = Matcher.compile(load_library(FIXTURE))
    assert matcher._key_scan.backend == backend
    for disguised, phrase in DISGUISED:
        for text in (disguised, f"{FILLER} {disguised} {FILLER}"):
            assert phrase in [h.phrase for h in matcher.scan(text)], text[:60]


def test_without_hyperscan_installed_the_matcher_falls_back() -> None:
    """An ARM gateway: ``import hyperscan`` fails; netmon compiles and catches disguises all the same."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["hyperscan"] = None  # what an interpreter without the wheel sees: ImportError
        from netmon.scan.keyscan import hyperscan_available
        from netmon.scan.library import load_library
        from netmon.scan.matching import Matcher
        assert not hyperscan_available()
        m = Matcher.compile(load_library({str(FIXTURE)!r}))
        print(m._key_scan.backend)
        print(sorted({{h.phrase for h in m.scan("k.i.l.l myself, 5u1c1d3 " + "x " * 400)}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split("\n")
    assert out[0] == "pyahocorasick"
    assert out[1] == "['kill', 'kill myself', 'suicide']"


@needs_hyperscan
def test_a_text_dense_with_matches_gives_the_same_matches(shipped: Matcher) -> None:
    """Past DENSE_MIN matches (one per DENSE_CHARS characters) pyahocorasick takes over: same answer."""
    scan = shipped._key_scan
    for text in (" kys " * (keyscan.DENSE_MIN + 10), " i will kill myself tonight " * 3000):
        assert scan.iter(text) == list(scan.automaton.iter(text))
