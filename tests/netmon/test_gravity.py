"""The grammar's ``grave`` lines: an alert in what a pupil typed is raised to 5 when it names a plan, a
time, a meeting... (netmon.scan.gravity); never an alert of their own, never on a page."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.errors import ConfigError
from netmon.scan.job import scan_job
from netmon.scan.libeval_paths import typed_job
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher
from netmon.scan.model import shipped_or_none

REPO = Path(__file__).resolve().parents[2]
CATEGORIES = """\
suicide | Suicide | Suicidal thoughts
violence | Violence | Threats
"""
GRAMMAR = """\
@language en
class FIRST = i, im
class WANT = want to, going to
anchor ACT = die, kill myself
class SOON = tonight, tomorrow
class GOODBYE = sorry for everything, look after my cat
class STORY = in the game, my character
rule suicide.want | suicide | 4 | FIRST WANT ACT | gap: 1
grave suicide | SOON, GOODBYE | unless: STORY
"""


def make(tmp_path: Path, grammar: str = GRAMMAR) -> Path:
    root = tmp_path / "library"
    (root / "en").mkdir(parents=True)
    (root / "categories.txt").write_text(CATEGORIES)
    (root / "en" / "intent.grammar").write_text(grammar)
    (root / "en" / "suicide.txt").write_text("@category suicide\n@language en\nsuicide | 1\nend it all | 4\n")
    return root


def top(matcher: Matcher, text: str, grammar: bool = True) -> tuple[int, tuple[str, ...]]:
    hits = [h for h in matcher.scan(text, grammar=grammar) if h.category == "suicide"]
    best = max(hits, key=lambda h: h.severity, default=None)
    return (best.severity, best.rules) if best else (0, ())


def test_an_alert_with_a_grave_marker_is_raised_to_5_and_says_why(tmp_path: Path) -> None:
    m = Matcher.compile(load_library(make(tmp_path)))
    assert top(m, "i want to die")[0] == 4
    severity, why = top(m, "i want to die tonight")
    assert severity == 5
    assert "grave: raised to 5 (SOON 'tonight', en/intent.grammar:9)" in why
    assert top(m, "I want to die. Sorry for everything!!")[0] == 5  # normalised like the phrases
    assert top(m, "i want to end it all, look after my cat")[0] == 5  # a phrase hit is raised too
    assert top(m, "my character wants to die tonight, i want to die in the game")[0] == 4  # unless:
    assert top(m, "suicide tonight")[0] == 1  # below an alert: never raised, never made an alert
    assert top(m, "tonight, sorry for everything")[0] == 0
    assert top(m, "i want to die tonight", grammar=False)[0] == 0  # a page: the grammar does not apply
    assert top(m, "end it all tonight", grammar=False)[0] == 4


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("grave suicide | NOPE", "grave suicide: unknown class NOPE"),
        ("grave bogus | SOON", "unknown category 'bogus'"),
        ("grave suicide | SOON | when: STORY", "unknown grave option 'when'"),
        ("grave suicide | soon", "grave: takes upper-case class names"),
        ("grave suicide", "expected 'grave category | CLASS, CLASS | unless: CLASS, ...'"),
    ],
)
def test_a_bad_grave_line_is_a_located_error(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_library(make(tmp_path, GRAMMAR + line + "\n"))
    assert message in str(err.value)
    assert "intent.grammar:" in str(err.value)


def test_shipped_grave_lines_grade_what_a_pupil_typed() -> None:
    """Through the scan job, model included: an alert the model made on its own is graded too."""
    matcher = Matcher.compile(load_library(REPO / "library"))
    model = shipped_or_none()

    def graded(text: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in scan_job(typed_job(text), matcher, model).hits:
            out[h.category] = max(out.get(h.category, 0), h.severity)
        return out

    assert graded("i want to die")["suicide"] == 4
    assert graded("i want to die tonight")["suicide"] == 5
    assert graded("i dont want to be here anymore, sorry for everything")["suicide"] == 5
    assert (
        graded("he wants to meet me at the station on my own and said not to tell my mum")[
            "child_sexual_exploitation"
        ]
        == 5
    )
    # an everyday text with a marker word stays as quiet as before
    assert max(graded("revision tonight then the cinema tomorrow").values(), default=0) < 3
    assert graded("i want to die in the game tonight lol")["suicide"] == 4  # a game: not raised
    # the model's own alert (no phrase or rule fires) is graded too
    hits = scan_job(typed_job("counting the days till i can rest, bye everyone"), matcher, model).hits
    assert [(h.library_file, h.severity) for h in hits if h.category == "suicide"] == [("model", 5)]
    assert "GRAVE_GOODBYE 'bye everyone'" in hits[0].rules[-1]
    assert max(graded("counting the days till the holidays, bye everyone").values(), default=0) < 3


def test_a_school_extends_the_grave_classes_in_its_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay" / "en"
    overlay.mkdir(parents=True)
    (overlay / "school.grammar").write_text("@language en\nclass SOON += after sports day\n")
    m = Matcher.compile(load_library(make(tmp_path), tmp_path / "overlay"))
    assert top(m, "i want to die after sports day")[0] == 5
    assert (
        top(Matcher.compile(load_library(make(tmp_path / "plain"))), "i want to die after sports day")[0] == 4
    )
