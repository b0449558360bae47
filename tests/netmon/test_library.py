"""The library format: loading, every check with its file:line, overlays (add, override, remove)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from netmon.errors import ConfigError
from netmon.scan.library import check_paths, load_library

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "library-mini"


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """A writable copy of the mini library."""
    root = tmp_path / "library"
    shutil.copytree(FIXTURE, root)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_load_fixture() -> None:
    library = load_library(FIXTURE)
    assert {c.id for c in library.categories} == {"self_harm", "suicide", "bullying", "violence"}
    by_phrase = {e.phrase: e for e in library.entries}
    kms = by_phrase["kill myself"]
    assert (kms.category, kms.language, kms.severity, kms.file, kms.line) == (
        "suicide",
        "en",
        5,
        "en/suicide.txt",
        4,
    )
    assert kms.unless == ("kill myself laughing",)
    cunt = by_phrase["cunt"]
    assert cunt.embedded and cunt.unless == ("scunthorpe",)
    sh = by_phrase["sh"]
    assert sh.with_ == ("blade", "cut", "scars") and sh.within == 40 and sh.note == '"self harm" abbreviation'
    assert by_phrase["lladd fy hun"].language == "cy"
    assert library.counts()[("suicide", "cy")] == 2
    assert len(library.fingerprint) == 16


def test_library_is_immutable() -> None:
    library = load_library(FIXTURE)
    with pytest.raises(AttributeError):
        library.entries = ()  # type: ignore[misc]
    assert isinstance(library.entries, tuple)


def test_fingerprint_follows_content(lib: Path) -> None:
    before = load_library(lib).fingerprint
    assert load_library(lib).fingerprint == before
    path = lib / "en" / "bullying.txt"
    path.write_text(path.read_text() + "idiot | 1\n")
    assert load_library(lib).fingerprint != before


def test_comments_blank_lines_and_note_with_semicolon(lib: Path) -> None:
    write(
        lib / "en" / "bullying.txt",
        "# a comment\n@category bullying   # trailing comment\n@language en\n\n"
        "twat | 2 | unless: twatt; note: rude; graded 2 # why\n",
    )
    (entry,) = [e for e in load_library(lib).entries if e.category == "bullying"]
    assert entry.phrase == "twat" and entry.unless == ("twatt",) and entry.note == "rude; graded 2"


# -- every check, with its file:line ------------------------------------------------------------------

BAD_LINES = [
    ("kill | 7", "severity must be 1-5 (got 7)"),
    ("kill | high", "severity must be a whole number 1-5 (got 'high')"),
    ("kill", "missing severity"),
    ("kill | 2 | embedded | x", "too many '|' fields"),
    ("!!! | 2", "normalises to nothing"),
    ("kill | 2 | sometimes", "unknown option 'sometimes'"),
    ("kill | 2 | within: 5", "within: needs a with: list"),
    ("kill | 2 | with: ; within: 5", "option 'with:' needs at least one phrase"),
    ("kill | 2 | with: blade; within: soon", "within: must be a whole number"),
    ("kill | 2 | unless: ...", "unless: phrase '...' normalises to nothing"),
    ("kill | 2 | embedded; embedded", "option 'embedded' given twice"),
    ("ki;ll | 2", "';' may not appear in a phrase"),
    ("-kill", "belongs in the school's overlay"),
    ("@colour red", "unknown directive @colour"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_each_error_names_file_and_line(lib: Path, line: str, message: str) -> None:
    write(lib / "en" / "violence.txt", f"@category violence\n@language en\n\nstab | 3\n{line}\n")
    report = check_paths([lib])
    assert not report.ok
    (error,) = report.errors
    assert error.where == f"{lib}/en/violence.txt:5"
    assert message in error.message
    assert str(error).startswith(f"{lib}/en/violence.txt:5: error: ")
    with pytest.raises(ConfigError) as caught:
        load_library(lib)
    assert caught.value.where == f"{lib}/en/violence.txt:5"
    assert message in str(caught.value)


def test_config_error_matches_the_documented_shape(tmp_path: Path) -> None:
    root = tmp_path / "library"
    write(root / "categories.txt", "self_harm | Self Harm | x\n")
    write(root / "en" / "x.txt", "@category self_harm\n@language en\n" + "\n" * 9 + "cut | 7\n")
    with pytest.raises(ConfigError) as caught:
        load_library(root)
    assert str(caught.value) == f"{root}/en/x.txt:12: severity must be 1-5 (got 7)"


def test_unknown_category(lib: Path) -> None:
    write(lib / "en" / "gaming.txt", "@category gaming\n@language en\nloot box | 1\n")
    (error,) = check_paths([lib]).errors
    assert error.where == f"{lib}/en/gaming.txt:1"
    assert "unknown category 'gaming'" in error.message


def test_missing_header(lib: Path) -> None:
    write(lib / "en" / "violence.txt", "stab | 3\n")
    errors = check_paths([lib]).errors
    assert errors[0].where == f"{lib}/en/violence.txt:1"
    assert "before the @category line" in errors[0].message


def test_bad_language_tag(lib: Path) -> None:
    write(lib / "en" / "violence.txt", "@category violence\n@language English\nstab | 3\n")
    (error,) = check_paths([lib]).errors
    assert error.where == f"{lib}/en/violence.txt:2" and "language tag" in error.message


def test_duplicate_with_conflicting_severity_is_an_error(lib: Path) -> None:
    write(lib / "en" / "violence.txt", "@category violence\n@language en\nstab | 3\nSTAB!! | 4\n")
    (error,) = check_paths([lib]).errors
    assert error.where == f"{lib}/en/violence.txt:4"
    assert "different severity (4)" in error.message and "violence.txt:3 (3)" in error.message


def test_duplicate_with_same_severity_is_a_warning(lib: Path) -> None:
    write(lib / "en" / "violence.txt", "@category violence\n@language en\nstab | 3\ns t a b | 3\n")
    report = check_paths([lib])
    assert report.ok
    (warning,) = report.warnings
    assert warning.where == f"{lib}/en/violence.txt:4" and "duplicate phrase" in warning.message
    assert str(warning).startswith(f"{lib}/en/violence.txt:4: warning: ")
    assert [e.phrase for e in load_library(lib).entries if e.category == "violence"] == ["stab"]


def test_bad_categories_file(lib: Path) -> None:
    write(
        lib / "categories.txt",
        "self_harm | Self Harm | x\nSelf Harm | y | z\nself_harm | again | z\nonly | two\n",
    )
    errors = check_paths([lib]).errors
    wheres = [e.where for e in errors]
    assert f"{lib}/categories.txt:2" in wheres
    assert f"{lib}/categories.txt:3" in wheres
    assert f"{lib}/categories.txt:4" in wheres


def test_not_utf8(lib: Path) -> None:
    (lib / "en" / "violence.txt").write_bytes(b"@category violence\n@language en\nst\xe9b | 3\n")
    (error,) = check_paths([lib]).errors
    assert error.where == f"{lib}/en/violence.txt:3" and "UTF-8" in error.message


def test_missing_library(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such library directory"):
        load_library(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="missing categories.txt"):
        load_library(tmp_path / "empty")


def test_check_collects_all_problems_and_counts(lib: Path) -> None:
    write(lib / "en" / "violence.txt", "@category violence\n@language en\nstab | 9\npunch | 0\nkick | 2\n")
    report = check_paths([lib])
    assert [e.where for e in report.errors] == [f"{lib}/en/violence.txt:3", f"{lib}/en/violence.txt:4"]
    counts = {(c, lang): n for c, lang, n in report.counts}
    assert counts[("violence", "en")] == 1
    assert counts[("suicide", "cy")] == 2
    assert report.files == 5


def test_check_single_file(lib: Path) -> None:
    report = check_paths([lib / "en" / "suicide.txt"])
    assert report.ok and report.counts == (("suicide", "en", 4),)


# -- the school's overlay -----------------------------------------------------------------------------


def test_overlay_adds_overrides_and_removes(lib: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(
        overlay / "en" / "suicide.txt",
        "@category suicide\n@language en\n"
        "unalive myself | 5\n"  # added
        "want to die | 2 | note: our pupils say it about homework\n"  # overridden
        "-kms\n"  # removed
        "-not in the library\n",
    )  # a warning
    library = load_library(lib, overlay)
    by_phrase = {e.phrase: e for e in library.entries if e.category == "suicide"}
    assert by_phrase["unalive myself"].file == "overlay:en/suicide.txt"
    assert (
        by_phrase["want to die"].severity == 2 and by_phrase["want to die"].file == "overlay:en/suicide.txt"
    )
    assert "kms" not in by_phrase
    assert "kill myself" in by_phrase  # untouched
    report = check_paths([lib], overlay=overlay)
    assert report.ok
    (warning,) = report.warnings
    assert warning.where == f"{overlay}/en/suicide.txt:6" and "no such phrase" in warning.message
    assert library.fingerprint != load_library(lib).fingerprint


def test_overlay_may_add_categories(lib: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "categories.txt", "vaping | Vaping | Vapes in school\n")
    write(overlay / "en" / "vaping.txt", "@category vaping\n@language en\nvape shop | 2\n")
    library = load_library(lib, overlay)
    assert library.category("vaping") is not None
    assert any(e.phrase == "vape shop" for e in library.entries)


def test_overlay_errors_name_the_overlay_file(lib: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "en" / "suicide.txt", "@category suicide\n@language en\nunalive | 6\n")
    with pytest.raises(ConfigError) as caught:
        load_library(lib, overlay)
    assert caught.value.where == f"{overlay}/en/suicide.txt:3"


def test_missing_overlay(lib: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such overlay directory"):
        load_library(lib, tmp_path / "nope")


def test_other_directories_are_ignored(lib: Path) -> None:
    write(lib / "eval" / "corpus.txt", "not a library file\n")
    write(lib / "README.txt", "about the library\n")
    assert check_paths([lib]).ok
