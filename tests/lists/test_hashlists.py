from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.hashlists import check_hash_list, load_hash_list

GOOD = """type,hash,category,severity,source
# IWF sample (made up)
md5,{md5},csam,5,IWF
sha1,{sha1},csam,5,IWF
sha256,{sha256},csam,5,IWF
phash,c3a58d0f0f0f0f0f,csam,5,local
dhash,0F0F0F0F0F0F0F0F,extremism,4,CTIRU
""".format(md5="a" * 32, sha1="b" * 40, sha256="c" * 64)


def test_good_list_loads_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "iwf.csv"
    path.write_text(GOOD)
    entries = load_hash_list(path)
    assert [(e.type, e.line) for e in entries] == [
        ("md5", 3),
        ("sha1", 4),
        ("sha256", 5),
        ("phash", 6),
        ("dhash", 7),
    ]
    assert entries[4].hash == "0f0f0f0f0f0f0f0f" and entries[4].severity == 4 and entries[4].file == str(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("md5,abc,csam,5,IWF", "md5 hash must be 32 hex digits"),
        ("sha256,{},csam,5,IWF".format("g" * 64), "sha256 hash must be 64 hex digits"),
        ("crc32,deadbeef,csam,5,x", "type must be one of"),
        ("phash,0123456789abcdef,,5,x", "category is empty"),
        ("phash,0123456789abcdef,csam,9,x", "severity must be 1-5 (got 9)"),
        ("phash,0123456789abcdef,csam,high,x", "severity must be a whole number"),
        ("phash,0123456789abcdef,csam,5", "expected 5 fields"),
    ],
)
def test_bad_line_is_reported_with_its_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"type,hash,category,severity,source\nmd5,{'a' * 32},csam,5,x\n{line}\n")
    report = check_hash_list(path)
    assert len(report.entries) == 1
    assert report.errors and report.errors[0].startswith(f"{path}:3: ") and message in report.errors[0]
    with pytest.raises(ConfigError, match=":3: "):
        load_hash_list(path)


def test_header_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"hash,type\nmd5,{'a' * 32},csam,5,x\nmd5,{'A' * 32},csam,5,x\n")
    errors = check_hash_list(path).errors
    assert errors[0].startswith(f"{path}:1: header must be type,hash,category,severity,source")
    assert errors[1] == f"{path}:3: duplicate md5 {'a' * 32} (first on line 2)"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty list" in check_hash_list(empty).errors[0]
    assert "cannot read" in check_hash_list(tmp_path / "missing.csv").errors[0]


def test_cli_check(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    bad = tmp_path / "bad.csv"
    bad.write_text("type,hash,category,severity,source\nmd5,xyz,csam,5,x\n")
    runner = CliRunner()
    ok = runner.invoke(main, ["hashlist", "check", str(good)])
    assert ok.exit_code == 0, ok.output
    assert f"{good}: ok, 5 entries (dhash 1, md5 1, phash 1, sha1 1, sha256 1)" in ok.output
    failed = runner.invoke(main, ["hashlist", "check", str(good), str(bad)])
    assert failed.exit_code == 1
    assert f"{bad}:2: md5 hash must be 32 hex digits" in failed.output


def test_cli_hash_prints_list_lines_that_load(tmp_path: Path) -> None:
    from tests.lists.images import encode, picture

    image = tmp_path / "known.jpg"
    image.write_bytes(encode(picture(1), "JPEG"))
    result = CliRunner().invoke(
        main,
        [
            "hashlist",
            "hash",
            str(image),
            "--category",
            "csam",
            "--header",
            "--type",
            "md5",
            "--type",
            "phash",
            "--source",
            "test",
        ],
    )
    assert result.exit_code == 0, result.output
    listing = tmp_path / "made.csv"
    listing.write_text(result.output)
    assert [e.type for e in load_hash_list(listing)] == ["md5", "phash"]
