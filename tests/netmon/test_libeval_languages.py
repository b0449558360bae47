"""``netmon library eval`` per language: recall (all messages and those graded 4-5) and quiet traps for
each ``lang``, in the text table and the JSON, and ``--lang`` to measure some languages only; run on the
real default library with the languages of issue 14."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli.library_eval_cmd import eval_cmd

ROWS = [
    {"text": "quiero suicidarme", "expect": "suicide", "min_severity": 4, "lang": "es"},
    {"text": "me siento un poco raro hoy", "expect": "suicide", "min_severity": 4, "lang": "es"},
    {"text": "me muero de risa con este video", "expect": None, "min_severity": 3, "lang": "es"},
    {"text": "أُرِيدُ أَنْ أَنْتَحِرَ", "expect": "suicide", "min_severity": 4, "lang": "ar"},
    {"text": "ابغى انتحـــر", "expect": "suicide", "min_severity": 4, "lang": "ar"},
    {"text": "الوقاية من الانتحار", "expect": None, "min_severity": 3, "lang": "ar"},
    {"text": "how to kill myself", "expect": "suicide", "min_severity": 4},
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "lang.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_text_report_has_a_row_per_language_with_recall_and_traps(corpus: Path) -> None:
    result = CliRunner().invoke(eval_cmd, [str(corpus), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("language"))
    assert lines[header].split() == [
        "language",
        "msgs",
        "caught",
        "recall",
        "sev>=4",
        "recall>=4",
        "traps",
        "quiet",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : header + 4]}
    assert rows["-"] == ["1", "1", "1.000", "1", "1.000", "0", "0"]  # no "lang": counted as "-"
    assert rows["ar"] == ["2", "2", "1.000", "2", "1.000", "1", "1"]  # with tashkeel and with tatweel
    assert rows["es"] == ["2", "1", "0.500", "2", "0.500", "1", "1"]


def test_json_report_gives_the_same_per_language(corpus: Path) -> None:
    result = CliRunner().invoke(eval_cmd, [str(corpus), "--json"])
    data = json.loads(result.output)
    assert data["by_language"]["es"] == {
        "messages": 2,
        "recall": 0.5,
        "high": 2,
        "recall_high": 0.5,
        "traps": 1,
        "trap_alarms": 0,
    }
    assert data["by_language"]["ar"]["recall_high"] == 1.0


def test_lang_option_measures_only_those_languages(corpus: Path) -> None:
    result = CliRunner().invoke(eval_cmd, [str(corpus), "--lang", "ar", "--json", "--min-recall", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["by_language"]) == {"ar"}
    assert data["messages"] == 2 and data["traps"] == 1
    # and the thresholds judge what was kept: Spanish alone misses the 1.0 floor
    failed = CliRunner().invoke(eval_cmd, [str(corpus), "--lang", "es", "--quiet", "--min-recall", "1"])
    assert failed.exit_code == 1
    assert "recall at severity >= 4 is 0.500" in failed.output
