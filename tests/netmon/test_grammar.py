"""The intent grammar: parsing and checks (library/<lang>/*.grammar), rule semantics, overlays, speed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from netmon.errors import ConfigError
from netmon.scan.library import check_paths, load_library
from netmon.scan.matching import Matcher

REPO = Path(__file__).resolve().parents[2]
CATEGORIES = """\
suicide | Suicide | Suicidal thoughts
self_harm | Self Harm | Hurting oneself
violence | Violence | Threats
"""
GRAMMAR = """\
@language en
class FIRST = i, im
class INTENT = want to, going to, think about
class NEG = never, dont, not
class THIRD = he, she, him, her
class HELP = help a friend, prevention
class TIME = tonight, tomorrow
anchor ACT = kill myself, end my life, suicide
anchor TARGET = him, her, everyone
anchor ATTACK = stab, shoot
rule suicide.intent | suicide | 4 | FIRST INTENT ACT      | gap: 2; unless: NEG; between: THIRD; lower: HELP
rule suicide.soon   | suicide | 5 | FIRST INTENT ACT TIME | gap: 2; unless: NEG
rule violence.threat | violence | 4 | FIRST INTENT ATTACK TARGET | gap: 1; note: a threat
"""


def make(tmp_path: Path, grammar: str = GRAMMAR, phrases: str = "") -> Path:
    root = tmp_path / "library"
    (root / "en").mkdir(parents=True)
    (root / "categories.txt").write_text(CATEGORIES)
    (root / "en" / "intent.grammar").write_text(grammar)
    (root / "en" / "suicide.txt").write_text("@category suicide\n@language en\nsuicide | 1\n" + phrases)
    return root


def rules_fired(matcher: Matcher, text: str) -> dict[str, int]:
    return {h.phrase: h.severity for h in matcher.scan(text) if h.phrase.startswith("rule ")}


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    return Matcher.compile(load_library(make(tmp_path)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i want to kill myself", {"rule suicide.intent": 4}),
        ("im going to really just end my life", {"rule suicide.intent": 4}),  # two words between
        ("i want to kill myself tonight", {"rule suicide.intent": 4, "rule suicide.soon": 5}),
        ("i think about suicide every day", {"rule suicide.intent": 4}),
        ("I W4NT T0 K1LL MYSELF", {"rule suicide.intent": 4}),  # normalised like the phrases
        ("i would never want to kill myself", {}),  # negation before the match
        ("i dont want to kill myself", {}),
        ("i want him to kill myself", {}),  # third person in a gap
        ("i want to kill myself, how to help a friend", {"rule suicide.intent": 1}),  # help-seeking: lowered
        ("i want to go to the shops and then home to kill myself", {}),  # too many words between
        ("he wants to kill himself", {}),
        ("im going to stab him", {"rule violence.threat": 4}),
        ("", {}),
    ],
)
def test_rule_semantics(matcher: Matcher, text: str, expected: dict[str, int]) -> None:
    assert rules_fired(matcher, text) == expected


def test_explanation_names_rule_and_slot_words(matcher: Matcher) -> None:
    hit = next(h for h in matcher.scan("so i want to kill myself") if h.phrase == "rule suicide.intent")
    assert hit.category == "suicide" and hit.library_file == "en/intent.grammar" and hit.line == 11
    assert hit.matched_text == "i want to kill myself"
    assert hit.rules[0] == (
        "rule suicide.intent [FIRST INTENT ACT]: FIRST 'i' + INTENT 'want to' + ACT 'kill myself'"
    )
    assert "exceptions absent: NEG, THIRD" in hit.rules
    threat = next(h for h in matcher.scan("im going to stab him") if h.phrase == "rule violence.threat")
    assert "a threat" in threat.rules


def test_offsets_map_back_to_the_original(matcher: Matcher) -> None:
    text = "Well... I’m GOING to   k!ll myself"
    hit = next(h for h in matcher.scan(text) if h.phrase == "rule suicide.intent")
    assert text[hit.start : hit.end] == hit.matched_text == "I’m GOING to   k!ll myself"


def test_text_without_anchor_words_costs_no_grammar(matcher: Matcher) -> None:
    assert matcher._grammar.matches("i want to go home", []) == []


def test_overlay_extends_classes_and_replaces_rules(tmp_path: Path) -> None:
    root = make(tmp_path)
    overlay = tmp_path / "overlay" / "en"
    overlay.mkdir(parents=True)
    (overlay / "local.grammar").write_text(
        "@language en\nclass ACT += unalive myself\nclass INTENT -= think about\n"
        "rule violence.threat | violence | 5 | FIRST INTENT ATTACK TARGET | gap: 1\n-rule suicide.soon\n"
    )
    m = Matcher.compile(load_library(root, tmp_path / "overlay"))
    assert rules_fired(m, "i want to unalive myself tonight") == {"rule suicide.intent": 4}
    assert rules_fired(m, "i think about suicide") == {}
    assert rules_fired(m, "im going to stab him") == {"rule violence.threat": 5}


@pytest.mark.parametrize(
    ("grammar", "message"),
    [
        ("class FIRST = i\n", "grammar line before the @language line"),
        ("@language en\nclass first = i\n", "class names are upper-case"),
        ("@language en\nrule x | suicide | 4 | FIRST\n", "unknown class FIRST"),
        ("@language en\nclass A = a\nrule x | suicide | 4 | A\n", "needs a required slot of an anchor class"),
        ("@language en\nanchor A = a\nrule x | nope | 4 | A\n", "unknown category 'nope'"),
        ("@language en\nanchor A = a\nrule x | suicide | 9 | A\n", "severity must be 1-5"),
        ("@language en\nanchor A = a\nrule x | suicide | 4 | A | gap: x\n", "gap: must be a whole number"),
        ("@language en\nanchor A = a\nrule x | suicide | 4 | A | colour: red\n", "unknown rule option"),
        ("@language en\nanchor A = a\nrule x | suicide | 4 | A | unless: B\n", "unknown class B"),
        ("@language en\nanchor A = a\nclass A = b\n", "class A is already defined"),
        ("@language en\nclass B += b\n", "class B is not defined"),
        ("@language en\nclass B -= b\n", "belongs in the school's overlay"),
        ("@language en\n-rule x\n", "belongs in the school's overlay"),
        ("@language en\nanchor A = !!!\n", "normalises to nothing"),
        ("@language en\nwhat is this\n", "expected 'class NAME = words'"),
        ("@language en\nanchor A = a\nrule x | suicide | 4 | A\nrule x | self_harm | 4 | A\n", "already"),
    ],
)
def test_located_errors(tmp_path: Path, grammar: str, message: str) -> None:
    root = make(tmp_path, grammar)
    with pytest.raises(ConfigError) as info:
        load_library(root)
    assert message in str(info.value)
    assert "intent.grammar:" in str(info.value)
    report = check_paths([root])
    assert any(message in p.message for p in report.errors)


def test_check_a_single_grammar_file(tmp_path: Path) -> None:
    root = make(tmp_path)
    assert check_paths([root / "en" / "intent.grammar"]).ok


def test_grammar_is_part_of_the_fingerprint(tmp_path: Path) -> None:
    a = load_library(make(tmp_path / "a")).fingerprint
    b = load_library(make(tmp_path / "b", GRAMMAR.replace("| 5 |", "| 4 |"))).fingerprint
    assert a != b


def test_shipped_grammar_loads_and_explains() -> None:
    library = load_library(REPO / "library")
    assert len(library.grammar.rules) >= 50
    m = Matcher.compile(library)
    for text, category in [
        ("i think about suicide every single day", "suicide"),
        ("best blades for cutting deep", "self_harm"),
        ("he wants me to meet him at his flat and not tell anyone", "child_sexual_exploitation"),
        ("i hate my life so much i want to disappear", "suicide"),
        ("delete yourself loser", "bullying"),
        ("how to smoke spice", "drugs"),
    ]:
        assert any(h.category == category and h.severity >= 4 for h in m.scan(text)), text
    quiet = ("i would never hurt myself", "how to help a friend who self harms", "suicide prevention")
    for text in quiet:
        assert not any(h.severity >= 3 for h in m.scan(text)), text


def test_copy_of_library_with_school_overlay(tmp_path: Path) -> None:
    root = tmp_path / "library"
    shutil.copytree(REPO / "library", root)
    overlay = tmp_path / "overlay" / "en"
    overlay.mkdir(parents=True)
    (overlay / "school.grammar").write_text("@language en\nclass WEAPON += pointy stick\n")
    m = Matcher.compile(load_library(root, tmp_path / "overlay"))
    assert any(h.category == "weapons" for h in m.scan("im bringing a pointy stick to school tomorrow"))


LOWERING = """\
@language en
class FIRST = i, im
class INTENT = want to, going to, gonna
class JOKE = lol, pizza
class TIME = tonight
anchor ATTACK = kill, stab
anchor TARGET = my brother
anchor ACT = kill myself
rule violence.threat      | violence | 4 | FIRST INTENT ATTACK TARGET      | gap: 1; lower: JOKE
rule violence.threat.soon | violence | 5 | FIRST INTENT ATTACK TARGET TIME | gap: 1
rule suicide.intent       | suicide  | 4 | FIRST INTENT ACT                | gap: 2; lower: JOKE
"""


def test_a_threat_the_grammar_reads_as_hyperbole_lowers_the_phrases_inside_it(tmp_path: Path) -> None:
    root = make(tmp_path, LOWERING, phrases="kill myself | 5\n")
    (root / "en" / "violence.txt").write_text(
        "@category violence\n@language en\nkill my brother | 4\nkill | 1\n"
    )
    m = Matcher.compile(load_library(root))

    def highest(text: str, category: str) -> int:
        return max((h.severity for h in m.scan(text) if h.category == category), default=0)

    joke = "im gonna kill my brother he ate my pizza"
    assert highest(joke, "violence") == 1
    lowered = next(h for h in m.scan(joke) if h.phrase == "kill my brother")
    assert any(r.startswith("lowered to 1: JOKE 'pizza' nearby") for r in lowered.rules)
    assert highest("im gonna kill my brother", "violence") == 4  # no joke: the phrase and the rule stand
    # a rule of the category that was not lowered keeps the phrase's severity
    assert highest("im gonna kill my brother tonight lol", "violence") == 5
    # a pupil's own risk is never lowered by a joke word: the phrase still alerts
    assert highest("im gonna kill myself lol", "suicide") == 5
    # a page body (no grammar) is unchanged
    assert max(h.severity for h in m.scan(joke, grammar=False) if h.category == "violence") == 4
