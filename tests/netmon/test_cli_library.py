"""``netmon library check``: located problems, counts per category and language, exit status."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from netmon.scan.model import RiskModel

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "library-mini"


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    shutil.copytree(FIXTURE, root)
    return root


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["library", "check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_clean_library(lib: Path) -> None:
    code, out, err = run(str(lib))
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].split() == ["category", "cy", "en", "total"]
    assert "suicide                      2      4      6" in out or any(
        line.split() == ["suicide", "2", "4", "6"] for line in lines
    )
    assert lines[-1] == "5 files, 15 phrases: 0 errors, 0 warnings"
    assert err == ""


def test_every_problem_located_and_exit_1(lib: Path) -> None:
    (lib / "en" / "violence.txt").write_text(
        "@category violence\n@language en\nstab | 3\nstab | 4\npunch | 7\n!!! | 2\nkick | 2\nkick | 2\n"
    )
    (lib / "en" / "gaming.txt").write_text("@category gaming\n@language en\nloot box | 1\n")
    code, out, err = run(str(lib))
    assert code == 1
    assert f"{lib}/en/gaming.txt:1: error: unknown category 'gaming'" in err
    assert (
        f"{lib}/en/violence.txt:4: error: duplicate phrase 'stab' in violence with a different severity"
        in err
    )
    assert f"{lib}/en/violence.txt:5: error: severity must be 1-5 (got 7)" in err
    assert f"{lib}/en/violence.txt:6: error: phrase '!!!' normalises to nothing" in err
    assert f"{lib}/en/violence.txt:8: warning: duplicate phrase 'kick'" in out
    assert out.splitlines()[-1].endswith("4 errors, 1 warning")


def test_single_file_and_overlay(lib: Path, tmp_path: Path) -> None:
    code, out, _ = run(str(lib / "cy" / "suicide.txt"))
    assert code == 0 and "1 files, 2 phrases" in out
    overlay = tmp_path / "overlay"
    (overlay / "en").mkdir(parents=True)
    (overlay / "en" / "suicide.txt").write_text("@category suicide\n@language en\nunalive | 9\n")
    code, _, err = run(str(lib), "--overlay", str(overlay))
    assert code == 1
    assert f"{overlay}/en/suicide.txt:3: error: severity must be 1-5 (got 9)" in err


def test_not_a_library(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path))
    assert code == 1 and "no categories.txt here" in err
    code, _, err = run(str(tmp_path / "missing"))
    assert code == 1 and "no such file or directory" in err


def test_console_script_checks_the_default_library() -> None:
    """The installed ``netmon`` command, as a school runs it (default library of this checkout)."""
    exe = Path(sys.executable).with_name("netmon")
    result = subprocess.run(
        [str(exe), "library", "check", "--quiet", "--no-warnings"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode in (0, 1)
    assert "files," in result.stdout and "phrases:" in result.stdout
    for line in result.stderr.splitlines():
        assert ": error: " in line  # every error is one located line


def test_eval_is_part_of_the_group() -> None:
    from netmon.cli.library_cmd import library

    assert {"check", "eval"} <= set(library.commands)


def test_library_test_explains_rules_and_phrases() -> None:
    result = CliRunner().invoke(main, ["library", "test", "i want to kill myself tonight"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "highest: suicide severity 5" in out
    assert "rule suicide.soon (en/intent.grammar:" in out
    assert "FIRST 'i' + INTENT 'want to' + SUICIDE_ACT 'kill myself' + TIME 'tonight'" in out
    assert "phrase 'kill myself' (en/suicide.txt:" in out


def test_library_test_reads_stdin_and_says_when_nothing_fires() -> None:
    result = CliRunner().invoke(main, ["library", "test"], input="what time is lunch\ni want to die\n")
    assert result.exit_code == 0, result.output
    assert re.search(r"text: 'what time is lunch'\n  model: [^\n]+\n  nothing fires", result.stdout)
    assert "text: 'i want to die'" in result.stdout and "suicide 4" in result.stdout


def test_library_test_shows_the_risk_model_as_the_scan_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "he says im more grown up than girls in my class and wants to drive me home, just us"
    result = CliRunner().invoke(main, ["library", "test", text])
    assert result.exit_code == 0, result.output
    assert "  model: suicide/self-harm 0." in result.output
    score = re.search(r"sexual exploitation (0\.\d\d)", result.output)
    assert score and float(score.group(1)) >= float(RiskModel.load().meta["alone_alert"])  # type: ignore[arg-type]
    assert "(the risk model)" in result.output and "model alone: an alert" in result.output
    # graded as the scan job grades it: an older man alone with a child is the gravest
    assert "highest: child_sexual_exploitation severity 5" in result.output
    assert "grave: raised to 5 (GRAVE_MEET 'just us', en/gravity.grammar:" in result.output
    monkeypatch.setenv("NETMON_RISK_MODEL", "off")
    quiet = CliRunner().invoke(main, ["library", "test", text])
    assert "model:" not in quiet.output and "child_sexual_exploitation" not in quiet.output


def test_library_test_bad_library_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "categories.txt").write_text("bad line\n")
    result = CliRunner().invoke(main, ["library", "test", "--library", str(tmp_path), "x"])
    assert result.exit_code == 1
    assert "categories.txt:1" in result.output and "Traceback" not in result.output


def scoped_overlay(tmp_path: Path) -> tuple[Path, Path]:
    """A library where 'shoot' and 'kill you' fire, and an overlay quieting them on sport.example."""
    root, overlay = tmp_path / "library", tmp_path / "overlay"
    (root / "en").mkdir(parents=True)
    (overlay / "en").mkdir(parents=True)
    (root / "categories.txt").write_text("violence | Violence | Threats\n")
    (root / "en" / "violence.txt").write_text("@category violence\n@language en\nshoot | 4\nkill you | 4\n")
    (overlay / "en" / "sport.txt").write_text(
        "@category violence\n@language en\n"
        "shoot | on: sport.example/report; unless: shoot the winning goal\n"
        "-kill you | on: sport.example\n"
    )
    return root, overlay


def library_test(root: Path, overlay: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["library", "test", "--library", str(root), "--overlay", str(overlay), *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


TEXT = "he will shoot the winning goal, or i will kill you"


def test_library_test_url_shows_which_scoped_line_quieted_which_phrase(tmp_path: Path) -> None:
    root, overlay = scoped_overlay(tmp_path)
    out = library_test(root, overlay, TEXT, "--url", "https://sport.example/report/today?x=1")
    assert (
        "  as a page of sport.example at /report/today (page text: the intent grammar does not apply)\n"
        in out
    )
    assert "  nothing fires on this page\n" in out
    assert (
        "  quieted here: violence 4  phrase 'shoot' (en/violence.txt:3) saw 'shoot'\n"
        "      by overlay:en/sport.txt:3: shoot | on: sport.example/report; unless: shoot the winning goal\n"
        "  quieted here: violence 4  phrase 'kill you' (en/violence.txt:4) saw 'kill you'\n"
        "      by overlay:en/sport.txt:4: -kill you | on: sport.example\n"
    ) in out


def test_library_test_url_keeps_what_the_lines_for_that_page_do_not_quiet(tmp_path: Path) -> None:
    root, overlay = scoped_overlay(tmp_path)
    # a subdomain: the site-wide removal applies, the page line (that host exactly) does not
    out = library_test(root, overlay, TEXT, "--url", "https://www.sport.example/report/today")
    assert "  as a page of www.sport.example at /report/today" in out and "nothing fires" not in out
    assert (
        "  highest: violence severity 4\n  violence 4  phrase 'shoot' (en/violence.txt:3) saw 'shoot'\n"
        in out
    )
    assert "  quieted here: violence 4  phrase 'kill you' (en/violence.txt:4)" in out
    assert "quieted here: violence 4  phrase 'shoot'" not in out
    # another page of the site, written without a scheme; and words the exception does not cover
    out = library_test(root, overlay, "we shoot at 3", "--url", "sport.example/report")
    assert "  as a page of sport.example at /report" in out
    assert "  violence 4  phrase 'shoot' (en/violence.txt:3) saw 'shoot'\n" in out and "quieted" not in out


def test_library_test_without_url_is_what_a_pupil_types(tmp_path: Path) -> None:
    root, overlay = scoped_overlay(tmp_path)
    out = library_test(root, overlay, TEXT)
    assert "as a page" not in out and "quieted" not in out
    assert "phrase 'shoot' (en/violence.txt:3)" in out and "phrase 'kill you' (en/violence.txt:4)" in out
    # another site's page: nothing is quieted
    out = library_test(root, overlay, TEXT, "--url", "https://badsport.example/report")
    assert "quieted" not in out and "phrase 'kill you' (en/violence.txt:4)" in out


def test_library_test_url_without_a_host_is_refused(tmp_path: Path) -> None:
    root, overlay = scoped_overlay(tmp_path)
    result = CliRunner().invoke(
        main, ["library", "test", "--library", str(root), "--url", "https:///news", "x"]
    )
    assert result.exit_code == 2
    assert "Invalid value for --url: 'https:///news' has no host" in result.output


@pytest.mark.parametrize(
    "url",
    ["https://sport.example/report/today", "https://www.sport.example/report", "https://news.example/report"],
)
def test_library_test_url_says_what_a_real_scan_of_that_page_reports(tmp_path: Path, url: str) -> None:
    from netmon.scan.library import load_library
    from netmon.scan.matching import Matcher
    from tests.netmon.test_library_scope import fired

    root, overlay = scoped_overlay(tmp_path)
    out = library_test(root, overlay, TEXT, "--url", url)
    shown = [
        line.split("  phrase ")[1].split(" (")[0].strip("'")
        for line in out.splitlines()
        if line.startswith("  violence ")
    ]
    assert sorted(shown) == sorted(fired(Matcher.compile(load_library(root, overlay)), url, TEXT))


def test_library_eval_measures_without_the_model_when_it_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NETMON_RISK_MODEL=off means the library and grammar alone, in ``library eval`` as in the scan."""
    corpus = tmp_path / "corpus.jsonl"
    text = "he says im more grown up than girls in my class and wants to drive me home, just us"
    corpus.write_text(
        json.dumps({"id": "m1", "text": text, "expect": "child_sexual_exploitation", "min_severity": 4})
        + "\n"
    )
    with_model = CliRunner().invoke(main, ["library", "eval", "--quiet", str(corpus)])
    assert "model raised: 1 messages" in with_model.output, with_model.output
    assert "recall at severity >= 4 by form: plain 1.000 (1/1)" in with_model.output
    monkeypatch.setenv("NETMON_RISK_MODEL", "off")
    alone = CliRunner().invoke(main, ["library", "eval", "--quiet", str(corpus)])
    assert "risk model: off" in alone.output, alone.output
    assert "recall at severity >= 4 by form: plain 0.000 (0/1)" in alone.output
