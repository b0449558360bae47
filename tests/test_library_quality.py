"""CI gate for the default phrase library: its shape, its evaluation set, and the figures it reached.

The figures below are the level the library reached when this gate was written (see README, "The
phrase library"). A change that lowers any of them fails CI: fix the library (or the normaliser), or
argue the new figure in review and lower the floor on purpose.

Benign pages are read from ../shared/data/benign-dev beside the checkout (third-party text, never
copied into the repository); the page test is skipped, with the reason, only when that folder is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.scan import libeval
from netmon.scan.library import check_paths, load_library
from netmon.scan.matching import Matcher

REPO = Path(__file__).resolve().parent.parent
EVAL = REPO / "tests" / "eval"
BENIGN = REPO.parent / "shared" / "data" / "benign-dev"

CATEGORIES = (
    "illegal child_sexual_exploitation bullying discrimination hate_speech drugs extremism pornography "
    "self_harm suicide violence gambling coercive_control intimate_image_abuse weapons eating_disorders "
    "circumvention"
).split()
WELSH = ("self_harm", "suicide", "bullying", "child_sexual_exploitation", "hate_speech", "violence")
MAJOR = (
    "child_sexual_exploitation bullying drugs extremism hate_speech pornography self_harm suicide violence "
    "gambling weapons eating_disorders circumvention"
).split()

# --- floors: the level reached (measured 2026-11-28, matcher of netmon.scan.matching) --------------------
FLOOR_RECALL_HIGH = 0.99  # all severity 4-5 messages, every form (measured 0.996)
FLOOR_FORM = {"plain": 0.99, "homoglyph": 0.99, "zero-width": 0.99, "leet": 0.99, "spacing": 0.97}
FLOOR_LANGUAGE = {"en": 0.99, "cy": 0.98, "pl": 0.99, "ro": 0.99}
FLOOR_CATEGORY_HIGH = 0.97  # every category's severity 4-5 recall
FLOOR_CATEGORY_ALL = 0.975  # every category's recall over all its messages
MAX_PAGE_ALARMS = 0  # benign-dev pages with an alarm at severity >= 3 (measured 0 of 98)
FLOOR_HELDOUT_HIGH = 0.8  # heldout.jsonl: written after the library (0.69 when written, 0.824 now)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(DEFAULT_LIBRARY_DIR))


@pytest.fixture(scope="module")
def report(matcher: Matcher) -> libeval.Report:
    corpus = libeval.load_corpus(
        [EVAL / "concerning.jsonl", EVAL / "obfuscated.jsonl", EVAL / "traps.jsonl"], CATEGORIES
    )
    return libeval.evaluate(matcher, corpus, min_severity=3, categories=CATEGORIES)


def _rows(name: str) -> list[dict[str, object]]:
    with (EVAL / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --- shape of the library ---------------------------------------------------------------------------


def test_library_checks_clean() -> None:
    report = check_paths([DEFAULT_LIBRARY_DIR])
    assert not report.problems, "\n".join(map(str, report.problems))
    assert set(report.categories) == set(CATEGORIES)


def test_every_category_has_a_graded_english_file_and_welsh_where_promised() -> None:
    library = load_library(DEFAULT_LIBRARY_DIR)
    counts = library.counts()
    for cat in CATEGORIES:
        assert counts.get((cat, "en"), 0) >= (150 if cat in MAJOR else 100), cat
    for cat in WELSH:
        assert counts.get((cat, "cy"), 0) >= 40, cat
    for entry in library.entries:
        assert entry.language == entry.file.split("/")[0], entry.file
    severities = Counter(e.severity for e in library.entries)
    assert all(severities[s] > 0 for s in range(1, 6)), severities


def test_every_file_explains_what_it_covers_and_its_grading() -> None:
    library = load_library(DEFAULT_LIBRARY_DIR)
    about: dict[str, str] = {}
    for file, text in library.about:
        about[file] = about.get(file, "") + " " + text
    files = {e.file for e in library.entries}
    for file in files:
        text = about.get(file, "").lower()
        assert len(text) > 200, f"{file}: @about is missing or too short"
        assert "1" in text and "4" in text, f"{file}: @about should explain the severity grades"


# --- the evaluation set -----------------------------------------------------------------------------


def test_eval_set_has_sixty_messages_per_category_and_traps() -> None:
    rows = _rows("concerning.jsonl")
    per = Counter(str(r["expect"]) for r in rows if r.get("lang") == "en")
    for cat in CATEGORIES:
        assert per[cat] >= 60, (cat, per[cat])
    welsh = Counter(str(r["expect"]) for r in rows if r.get("lang") == "cy")
    for cat in WELSH:
        assert welsh[cat] >= 15, (cat, welsh[cat])
    traps = _rows("traps.jsonl")
    assert len(traps) >= 100 and all(t["expect"] is None for t in traps)


def test_obfuscated_set_is_the_committed_output_of_the_script(tmp_path: Path) -> None:
    out = tmp_path / "obfuscated.jsonl"
    subprocess.run(
        [sys.executable, str(EVAL / "make_obfuscated.py"), str(EVAL / "concerning.jsonl"), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8") == (EVAL / "obfuscated.jsonl").read_text(encoding="utf-8"), (
        "tests/eval/obfuscated.jsonl is stale: run .venv/bin/python tests/eval/make_obfuscated.py"
    )
    forms = Counter(str(r["form"]) for r in _rows("obfuscated.jsonl"))
    assert set(forms) == {"leet", "spacing", "homoglyph", "zero-width"}
    assert len(set(forms.values())) == 1


# --- the figures, held at the level reached ---------------------------------------------------------


def test_recall_at_high_severity_holds(report: libeval.Report) -> None:
    assert report.recall_high is not None
    assert report.recall_high >= max(FLOOR_RECALL_HIGH, libeval.TARGET_RECALL_HIGH), _misses(report)


def test_recall_per_form_and_language_holds(report: libeval.Report) -> None:
    forms = {f: k / n for f, n, k in report.forms}
    for form, floor in FLOOR_FORM.items():
        assert forms[form] >= floor, (form, forms[form], _misses(report, form))
    langs = {lang: k / n for lang, n, k in report.languages}
    for lang, floor in FLOOR_LANGUAGE.items():
        assert langs[lang] >= floor, (lang, langs[lang])


@pytest.mark.parametrize("category", CATEGORIES)
def test_recall_per_category_holds(report: libeval.Report, category: str) -> None:
    figures = next(c for c in report.categories if c.category == category)
    assert figures.recall is not None and figures.recall >= FLOOR_CATEGORY_ALL, (figures, _misses(report))
    if figures.recall_high is not None:
        assert figures.recall_high >= FLOOR_CATEGORY_HIGH, (figures, _misses(report))


def test_heldout_wording_holds(matcher: Matcher) -> None:
    """Messages written after the library was finished, in wording it was never tuned on: the honest
    estimate of recall on new phrasing. Add new misses to concerning.jsonl, not here."""
    corpus = libeval.load_corpus([EVAL / "heldout.jsonl"], CATEGORIES)
    report = libeval.evaluate(matcher, corpus, min_severity=3)
    assert report.recall_high is not None and report.recall_high >= FLOOR_HELDOUT_HIGH, _misses(report)


def test_every_trap_is_quiet(report: libeval.Report) -> None:
    noisy = [o for o in report.false_alarms if o.item.kind == "message"]
    assert report.traps >= 100
    assert not noisy, "\n".join(f"{o.item.text!r}: {[h.phrase for h in o.fired]}" for o in noisy)


def test_benign_pages_stay_quiet(matcher: Matcher) -> None:
    if not BENIGN.is_dir():
        pytest.skip(f"benign pages not found at {BENIGN} (../shared/data/benign-dev beside the checkout)")
    corpus = libeval.load_corpus([BENIGN])
    report = libeval.evaluate(matcher, corpus, min_severity=3)
    assert report.pages >= 50
    detail = "\n".join(libeval.format_report(report)[-10:])
    assert report.page_alarms <= MAX_PAGE_ALARMS, detail
    assert (report.false_alarms_per_1000 or 0.0) <= libeval.TARGET_FALSE_ALARMS_PER_1000, detail


def _misses(report: libeval.Report, form: str | None = None) -> str:
    rows = [o for o in report.misses if form is None or o.item.form == form]
    return "\n".join(f"{o.item.id}: {o.item.text!r}" for o in rows[:30])


def test_grammar_dev_set_holds(matcher: Matcher) -> None:
    """The intent grammar's tuning set (issue 14): held at the level reached."""
    corpus = libeval.load_corpus([EVAL / "grammar-dev.jsonl"], CATEGORIES)
    report = libeval.evaluate(matcher, corpus, min_severity=3)
    assert report.recall_high is not None and report.recall_high >= 0.97, _misses(report)
    assert not report.trap_alarms, [o.item.text for o in report.false_alarms]


def test_fresh_wording_is_measured_not_tuned(matcher: Matcher) -> None:
    """tests/eval/fresh-2026-12.jsonl is HELD OUT (tests/eval/README.md): written after the grammar was
    finished and never used to tune it. This floor is the level first measured (54/86 = 0.628), so a
    change that loses ground shows; never raise it by editing the library against this file."""
    corpus = libeval.load_corpus([EVAL / "fresh-2026-12.jsonl"], CATEGORIES)
    report = libeval.evaluate(matcher, corpus, min_severity=3)
    assert report.recall_high is not None and report.recall_high >= 0.62, _misses(report)
