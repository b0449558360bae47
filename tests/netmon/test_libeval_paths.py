"""``netmon library eval --as``: items scored through the scan job (with the shipped risk model) or as
before. A small real library, the real matcher, the real shipped model, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli.library_eval_cmd import eval_cmd
from netmon.scan import libeval
from netmon.scan.matching import Matcher
from netmon.scan.model import RiskModel
from tests.netmon.test_libeval import corpus, library_dir, matcher, write_jsonl  # noqa: F401 - fixtures

#: The test library has "suicide | 1"; the shipped model scores this >= 0.8 for suicide/self-harm,
#: so the scan job raises the hit to severity 4 on what a pupil typed.
RAISED = "i want to commit suicide tonight"


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return RiskModel.load()


@pytest.fixture
def raised_corpus(tmp_path: Path) -> list[Path]:
    labelled = write_jsonl(
        tmp_path / "raised.jsonl",
        [{"id": "r1", "text": RAISED, "expect": "suicide", "min_severity": 4}],
    )
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "same-words.txt").write_text(f"A character in the novel says: {RAISED}.\n", encoding="utf-8")
    return [labelled, pages]


def test_model_raised_message_counts_at_raised_severity_only_on_typed_path(
    matcher: Matcher,  # noqa: F811
    raised_corpus: list[Path],
    model: RiskModel,
) -> None:
    corpus_items = libeval.load_corpus(raised_corpus)
    typed = libeval.evaluate(matcher, corpus_items, 3, path="typed", model=model)
    (message,) = [o for o in typed.outcomes if o.item.kind == "message"]
    assert message.ok and message.raised and message.ok_without_model is False
    hit = max(message.hits, key=lambda h: h.severity)
    assert (hit.category, hit.severity) == ("suicide", 4)
    assert any("raised from 1" in rule for rule in hit.rules)
    assert (typed.recall_high, typed.model_raised, typed.model_caught, typed.model_alarms) == (1.0, 1, 1, 0)
    # the same words on a page are the library's alone: the model never reads pages
    (page,) = [o for o in typed.outcomes if o.item.kind == "page"]
    assert page.ok and not page.raised and max(h.severity for h in page.hits) == 1
    for path in ("page", "library"):
        other = libeval.evaluate(matcher, corpus_items, 3, path=path, model=model)
        assert other.recall_high == 0.0 and other.model_raised == 0 and not other.model
        assert [o.item.id for o in other.misses] == ["r1"]


def test_cli_typed_header_and_model_line(library_dir: Path, raised_corpus: list[Path]) -> None:  # noqa: F811
    result = CliRunner().invoke(eval_cmd, ["--library", str(library_dir), *map(str, raised_corpus)])
    assert result.exit_code == 0, result.output
    assert "scored as: typed (messages as pupil-typed text through the scan job" in result.output
    assert "model raised: 1 messages; caught only with the model: 1" in result.output
    assert "misses (0):" in result.output
    result = CliRunner().invoke(
        eval_cmd, ["--library", str(library_dir), "--as", "library", *map(str, raised_corpus)]
    )
    assert "scored as: library (" in result.output and "model raised" not in result.output
    assert "misses (1):" in result.output and "r1 [suicide >= 4]" in result.output


@pytest.mark.parametrize("path", ["page", "library"])
def test_page_and_library_paths_reproduce_the_figures_before_as(
    library_dir: Path,  # noqa: F811
    corpus: list[Path],  # noqa: F811
    matcher: Matcher,  # noqa: F811
    path: str,
) -> None:
    # The figures before --as: the matcher straight over each item's text. This test library has no
    # intent grammar, so the job's page path (which skips the grammar) gives the same figures too.
    before = [
        libeval.judge(item, matcher.scan(item.text), 3)
        for _, items in libeval.load_corpus(corpus)
        for item in items
    ]
    result = CliRunner().invoke(
        eval_cmd, ["--library", str(library_dir), "--as", path, "--json", *map(str, corpus)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["path"] == path and data["model"] is False and data["model_raised"] is None
    assert data["recall_high"] == pytest.approx(0.75) and data["recall"] == pytest.approx(5 / 6)
    assert (data["pages"], data["page_alarms"], data["traps"], data["trap_alarms"]) == (3, 1, 3, 0)
    assert data["categories"]["suicide"]["precision"] == pytest.approx(2 / 3)
    assert [m["id"] for m in data["misses"]] == [o.item.id for o in before if o.item.expect and not o.ok]
    assert [a["id"] for a in data["false_alarms"]] == [
        o.item.id for o in before if not o.item.expect and not o.ok
    ]
