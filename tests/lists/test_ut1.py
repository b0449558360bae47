from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.lists.ut1 import Ut1Lists, import_ut1

SAMPLES = Path(os.environ.get("NETMON_UT1_SAMPLES", Path(__file__).resolve().parents[3] / "shared/data/ut1"))
needs_samples = pytest.mark.skipif(
    not (SAMPLES / "gambling" / "domains").is_file(),
    reason=f"UT1 samples not found at {SAMPLES} (set NETMON_UT1_SAMPLES)",
)


def _first_line(path: Path) -> str:
    with path.open() as fh:
        return next(line.strip() for line in fh if line.strip() and not line.startswith("#"))


@needs_samples
def test_import_samples_and_lookup(tmp_path: Path) -> None:
    out = tmp_path / "ut1.sqlite"
    report = import_ut1(SAMPLES, out)
    names = {c.name for c in report.imported}
    assert {"gambling", "adult", "phishing", "vpn"} <= names
    assert {c.name for c in report.skipped_whitelists} == {"child", "liste_bu", "sexual_education"}
    lists = Ut1Lists(out)
    gambling = _first_line(SAMPLES / "gambling" / "domains")
    found = lists.match_host(f"www.{gambling}")
    assert [(e.category, e.type, e.file, e.line) for e in found] == [
        ("gambling", "domain", "ut1:gambling/domains", 1)
    ]
    assert lists.match_url(f"https://cdn.{gambling}/slots?x=1")[0].category == "gambling"
    adult_url = _first_line(SAMPLES / "adult" / "urls")  # host/path, a prefix entry
    assert any(e.category == "adult" for e in lists.match_url(f"http://{adult_url}/more/stuff?a=b"))
    assert not lists.match_url(f"http://{adult_url.split('/')[0]}/other-page")


@needs_samples
def test_whitelist_is_not_a_block_list(tmp_path: Path) -> None:
    out = tmp_path / "ut1.sqlite"
    import_ut1(SAMPLES, out)
    lists = Ut1Lists(out)
    allowed = _first_line(SAMPLES / "liste_bu" / "domains")
    assert not [e for e in lists.match_host(allowed) if e.category == "liste_bu"]
    assert "liste_bu" not in lists.categories


@needs_samples
def test_cli_import_writes_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETMON_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(
        main,
        [
            "lists",
            "import",
            "ut1",
            str(SAMPLES),
            "--category",
            "gambling",
            "--category",
            "liste_bu",
            "--severity",
            "gambling=4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gambling: 2000 domains" in result.output and "severity 4" in result.output
    assert "liste_bu: skipped (whitelist" in result.output
    assert (tmp_path / "state" / "lists" / "ut1.sqlite").is_file()
    lists = Ut1Lists(tmp_path / "state" / "lists" / "ut1.sqlite")
    assert lists.categories == ("gambling",) and lists.severity["gambling"] == 4


def test_layout_with_expressions_and_bad_lines(tmp_path: Path) -> None:
    src = tmp_path / "blacklists"
    (src / "adult").mkdir(parents=True)
    (src / "adult" / "usage").write_text("black\nadult\n")
    (src / "adult" / "domains").write_text(
        "# comment\nporn.example\n\nbad host with spaces\nSUB.Other.Example\n"
    )
    (src / "adult" / "urls").write_text("site.example/private\n")
    (src / "adult" / "expressions").write_text(r"(^|[-/_.])(xxx|porn)s?([-/_.?]|$)" + "\n")
    (src / "adult" / "very_restrictive_expression").write_text("(sex)\n")
    (src / "white").mkdir()
    (src / "white" / "usage").write_text("white\n")
    (src / "white" / "domains").write_text("porn.example\n")
    report = import_ut1(src, tmp_path / "o.sqlite")
    (adult,) = report.imported
    assert (adult.domains, adult.urls, adult.expressions, adult.bad_lines) == (2, 1, 1, 1)
    lists = Ut1Lists(tmp_path / "o.sqlite")
    assert [e.line for e in lists.match_host("a.porn.example")] == [2]
    assert lists.match_host("x.sub.other.example") and not lists.match_host("other.example")
    assert lists.match_url("http://site.example/private/area")
    assert not lists.match_url("http://site.example/privateer")
    expr = lists.match_url("http://blog.test/free-xxx/")
    assert [(e.type, e.file) for e in expr] == [("expression", "ut1:adult/expressions")]
    assert not lists.match_url("http://sussex.test/essex")  # very_restrictive not imported by default


def test_not_a_ut1_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no UT1 categories"):
        import_ut1(tmp_path, tmp_path / "o.sqlite")
    with pytest.raises(ConfigError, match="run `netmon lists import ut1"):
        Ut1Lists(tmp_path / "missing.sqlite")
    result = CliRunner().invoke(main, ["lists", "import", "ut1", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no UT1 categories" in result.output


def test_million_lines_stream_in_constant_memory(tmp_path: Path) -> None:
    """A million-domain category imports without holding it in memory, and lookups stay fast."""
    src = tmp_path / "bl" / "adult"
    src.mkdir(parents=True)
    (src / "usage").write_text("black\n")
    with (src / "domains").open("w") as fh:
        for i in range(1_000_000):
            fh.write(f"host{i}.example{i % 101}.com\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = import_ut1(tmp_path / "bl", tmp_path / "big.sqlite")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert report.imported[0].domains == 1_000_000
    assert grown_mb < 100, f"import grew memory by {grown_mb:.0f} MB"
    lists = Ut1Lists(tmp_path / "big.sqlite")
    start = time.perf_counter()
    for i in range(0, 1_000_000, 1000):
        assert lists.match_host(f"www.host{i}.example{i % 101}.com")
    per_lookup = (time.perf_counter() - start) / 1000
    assert per_lookup < 0.002
    assert not lists.match_host("host5.example6.com")


def test_cli_state_dir_option(tmp_path: Path) -> None:
    src = tmp_path / "bl" / "gambling"
    src.mkdir(parents=True)
    (src / "domains").write_text("roulette.example\n")
    (src / "usage").write_text("black\n")
    result = CliRunner().invoke(
        main, ["lists", "import", "ut1", str(tmp_path / "bl"), "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 0, result.output
    assert Ut1Lists(tmp_path / "state" / "lists" / "ut1.sqlite").match_host("roulette.example")


def test_import_from_the_downloaded_archive(tmp_path: Path) -> None:
    import tarfile

    root = tmp_path / "blacklists"
    for name, usage, domains in (
        ("gambling", "black\n", "roulette.example\ndice.example\n"),
        ("liste_bu", "white\n", "library.example\n"),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "usage").write_text(usage)
        (root / name / "domains").write_text(domains)
    (root / "gambling" / "urls").write_text("cards.example/poker\n")
    archive = tmp_path / "blacklists.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="blacklists")
    report = import_ut1(archive, tmp_path / "a.sqlite")
    assert [(c.name, c.domains, c.urls, c.whitelist) for c in report.categories] == [
        ("gambling", 2, 1, False),
        ("liste_bu", 0, 0, True),
    ]
    lists = Ut1Lists(tmp_path / "a.sqlite")
    assert lists.match_host("www.dice.example") and not lists.match_host("library.example")
    assert lists.match_url("https://cards.example/poker/table1")
    result = CliRunner().invoke(
        main, ["lists", "import", "ut1", str(archive), "--out", str(tmp_path / "b.sqlite")]
    )
    assert result.exit_code == 0 and "gambling: 2 domains, 1 urls" in result.output
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(ConfigError):
        import_ut1(broken, tmp_path / "c.sqlite")
    assert not (tmp_path / "c.sqlite").exists()
