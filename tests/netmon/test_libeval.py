"""netmon.scan.libeval and ``netmon library eval``: a small real library, real matcher, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli.library_eval_cmd import eval_cmd
from netmon.errors import ConfigError
from netmon.scan import libeval
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher

CATEGORIES = """\
# id | display name | description
suicide | Suicide | Suicidal thoughts and intent
violence | Violence | Threats to hurt others
"""

SUICIDE = """\
@category suicide
@language en
@about Test list.
suicide          | 1
kill myself      | 4 | unless: kill myself laughing
kms              | 4
how to kill myself | 5
"""

VIOLENCE = """\
@category violence
@language en
@about Test list.
kill             | 1 | unless: kill the process
stab you         | 4
shoot            | 3 | with: school, teacher; within: 40
"""


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "en").mkdir(parents=True)
    (root / "categories.txt").write_text(CATEGORIES, encoding="utf-8")
    (root / "en" / "suicide.txt").write_text(SUICIDE, encoding="utf-8")
    (root / "en" / "violence.txt").write_text(VIOLENCE, encoding="utf-8")
    return root


@pytest.fixture
def matcher(library_dir: Path) -> Matcher:
    return Matcher.compile(load_library(library_dir))


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> list[Path]:
    labelled = write_jsonl(
        tmp_path / "labelled.jsonl",
        [
            {"id": "s1", "text": "i want to kill myself", "expect": "suicide", "min_severity": 4},
            {"id": "s2", "text": "k m s", "expect": "suicide", "min_severity": 4, "form": "spacing"},
            {"id": "s3", "text": "i feel so low", "expect": "suicide", "min_severity": 4},  # a miss
            {"id": "s4", "text": "reading about suicide", "expect": "suicide", "min_severity": 1},
            {"id": "v1", "text": "i will stab you", "expect": "violence", "min_severity": 4},
            {"id": "v2", "text": "gonna shoot up the school", "expect": "violence", "min_severity": 3},
            {"id": "t1", "text": "kill the process then restart", "expect": None, "min_severity": 1},
            {"id": "t2", "text": "i could kill myself laughing", "expect": None, "min_severity": 2},
            {"id": "t3", "text": "shoot a photo at the beach", "expect": None, "min_severity": 2},
        ],
    )
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "quiet.txt").write_text("A page about gardening and the history of suicide prevention.\n")
    (pages / "noisy.txt").write_text("In the story he says: how to kill myself? and then he walks away.\n")
    (pages / "sub").mkdir()
    (pages / "sub" / "quiet2.txt").write_text("Nothing to see here; kill the process.\n")
    return [labelled, pages]


def test_judge_caught_needs_category_and_severity(matcher: Matcher) -> None:
    item = libeval.Item("x", "i want to kill myself", "suicide", 4, "f:1", "message")
    assert libeval.judge(item, matcher.scan(item.text), 3).ok
    higher = libeval.Item("x", "i want to kill myself", "suicide", 5, "f:1", "message")
    assert not libeval.judge(higher, matcher.scan(higher.text), 3).ok
    wrong = libeval.Item("x", "i want to kill myself", "violence", 2, "f:1", "message")  # only "kill" (1)
    assert not libeval.judge(wrong, matcher.scan(wrong.text), 3).ok


def test_judge_benign_uses_own_threshold_or_the_evaluations(matcher: Matcher) -> None:
    page = libeval.Item("p", "about suicide", None, None, "p", "page")
    assert libeval.judge(page, matcher.scan(page.text), 3).ok  # a severity 1 topic hit is not an alarm
    strict = libeval.Item("t", "about suicide", None, 1, "f:1", "message")
    outcome = libeval.judge(strict, matcher.scan(strict.text), 3)
    assert not outcome.ok
    assert [h.phrase for h in outcome.fired] == ["suicide"]


def test_evaluate_figures(matcher: Matcher, corpus: list[Path]) -> None:
    report = libeval.evaluate(matcher, libeval.load_corpus(corpus), min_severity=3)
    suicide = next(c for c in report.categories if c.category == "suicide")
    assert (suicide.messages, suicide.caught, suicide.high, suicide.high_caught) == (4, 3, 3, 2)
    assert suicide.recall == pytest.approx(0.75)
    assert suicide.recall_high == pytest.approx(2 / 3)
    violence = next(c for c in report.categories if c.category == "violence")
    assert violence.recall == 1.0
    assert [o.item.id for o in report.misses] == ["s3"]
    assert report.high == 4 and report.high_caught == 3
    assert report.pages == 3 and report.page_alarms == 1
    assert report.false_alarms_per_1000 == pytest.approx(1000 / 3)
    assert report.traps == 3 and report.trap_alarms == 0
    # precision: the suicide alarm on the noisy page is not a suicide message
    assert suicide.alarms == 3 and suicide.correct_alarms == 2
    assert dict((f, (n, k)) for f, n, k in report.forms) == {"plain": (3, 2), "spacing": (1, 1)}


def test_report_lists_every_miss_and_false_alarm_with_the_phrase(
    matcher: Matcher, corpus: list[Path]
) -> None:
    report = libeval.evaluate(matcher, libeval.load_corpus(corpus), min_severity=3)
    text = "\n".join(libeval.format_report(report))
    assert "misses (1):" in text and "s3 [suicide >= 4] 'i feel so low' -> nothing fired" in text
    assert "false alarms (1):" in text
    assert "noisy.txt" in text and "'how to kill myself' (en/suicide.txt:7)" in text
    assert "targets (issue 14)" in text
    data = libeval.report_json(report)
    assert data["recall_high"] == pytest.approx(0.75)
    assert data["misses"][0]["id"] == "s3"  # type: ignore[index]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"expect": "suicide"}', '"text" string'),
        ('{"text": "x", "expect": "nonsense"}', "unknown category 'nonsense'"),
        ('{"text": "x", "expect": "suicide", "min_severity": 9}', "must be 1-5 (got 9)"),
        ('{"text": "x", "expect": 3}', "category id or null"),
    ],
)
def test_bad_corpus_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "expect": null}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        libeval.load_corpus([path], ["suicide", "violence"])
    assert err.value.where == f"{path}:2"
    assert message in err.value.message


def test_missing_corpus_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        libeval.load_corpus([tmp_path / "nope.jsonl"])


# --- the command ---------------------------------------------------------------------------------


def run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(eval_cmd, args)
    return result.exit_code, result.output


def test_cli_prints_table_and_passes_thresholds(library_dir: Path, corpus: list[Path]) -> None:
    code, out = run([*map(str, corpus), "--library", str(library_dir), "--min-recall", "0.7"])
    assert code == 0, out
    assert "suicide" in out and "violence" in out and "recall>=4" in out
    assert "benign pages: 3, with an alarm at severity >= 3: 1 (333.3 per 1,000)" in out
    assert "s3 [suicide >= 4]" in out


def test_cli_fails_under_min_recall(library_dir: Path, corpus: list[Path]) -> None:
    code, out = run([*map(str, corpus), "--library", str(library_dir), "--min-recall", "0.9", "--quiet"])
    assert code == 1
    assert "recall at severity >= 4 is 0.750, below --min-recall 0.9" in out
    assert "misses (" not in out  # --quiet keeps the figures only


def test_cli_fails_over_max_false_alarms(library_dir: Path, corpus: list[Path]) -> None:
    code, out = run([str(corpus[1]), "--library", str(library_dir), "--max-false-alarms", "5"])
    assert code == 1
    assert "above --max-false-alarms 5" in out
    # the same pages judged only from severity 5 up: the severity 5 phrase still fires
    code, _ = run(
        [str(corpus[1]), "--library", str(library_dir), "--max-false-alarms", "5", "--min-severity", "5"]
    )
    assert code == 1
    code, _ = run([str(corpus[1]), "--library", str(library_dir), "--max-false-alarms", "400"])
    assert code == 0


def test_cli_min_severity_changes_what_counts_as_an_alarm(library_dir: Path, tmp_path: Path) -> None:
    pages = tmp_path / "p"
    pages.mkdir()
    (pages / "a.txt").write_text("they will shoot at the school gates in the film", encoding="utf-8")
    code, _ = run([str(pages), "--library", str(library_dir), "--max-false-alarms", "0"])
    assert code == 1  # 'shoot' with 'school' nearby is severity 3
    code, _ = run(
        [str(pages), "--library", str(library_dir), "--max-false-alarms", "0", "--min-severity", "4"]
    )
    assert code == 0


def test_cli_json_output(library_dir: Path, corpus: list[Path]) -> None:
    code, out = run([*map(str, corpus), "--library", str(library_dir), "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["pages"] == 3 and data["page_alarms"] == 1
    assert data["categories"]["suicide"]["recall_high"] == pytest.approx(2 / 3)
    assert data["failures"] == []


def test_cli_bad_corpus_is_one_clear_line(library_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "expect": "gardening"}\n', encoding="utf-8")
    code, out = run([str(bad), "--library", str(library_dir)])
    assert code == 1
    assert f"Error: {bad}:1: unknown category 'gardening'" in out


def test_cli_recall_without_high_severity_messages(library_dir: Path, tmp_path: Path) -> None:
    low = write_jsonl(
        tmp_path / "low.jsonl", [{"text": "about suicide", "expect": "suicide", "min_severity": 1}]
    )
    code, out = run([str(low), "--library", str(library_dir), "--min-recall", "1.0"])
    assert code == 0, out


def test_library_group_has_eval() -> None:
    """`netmon library eval` is the command schools run; the group lives in netmon.cli.library_cmd."""
    library_cmd = pytest.importorskip("netmon.cli.library_cmd")
    assert "eval" in library_cmd.library.commands


def test_netmon_library_eval_end_to_end(library_dir: Path, corpus: list[Path]) -> None:
    """The command as a school runs it: a real `python -m netmon` process, exit status and output."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "netmon",
        "library",
        "eval",
        *map(str, corpus),
        "--library",
        str(library_dir),
    ]
    ok = subprocess.run([*cmd, "--min-recall", "0.7"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "recall>=4" in ok.stdout and "false alarms (1):" in ok.stdout
    failing = subprocess.run([*cmd, "--max-false-alarms", "5"], capture_output=True, text=True, timeout=120)
    assert failing.returncode == 1
    assert "above --max-false-alarms 5" in failing.stderr
