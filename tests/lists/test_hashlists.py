from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.lists.hashlists import check_hash_list, load_hash_list

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
    report = check_hash_list(path)
    assert report.errors[0].startswith(f"{path}:1: header must be type,hash,category,severity,source")
    assert report.warnings == (f"{path}:3: duplicate md5 {'a' * 32} (first on line 2); ignored",)
    assert len(report.entries) == 1 and report.entries[0].line == 2
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


def test_columns_exact_lookup_edge_digests_and_quoted_fields(tmp_path: Path) -> None:
    from netmon.lists.hashindex import HashIndex
    from netmon.lists.hashlists import load_hash_columns

    zeros_end = "ab" + "00" * 15
    zeros_start = "00" * 15 + "ab"
    path = tmp_path / "l.csv"
    path.write_text(
        "type,hash,category,severity,source\n"
        f"md5,{zeros_end},csam,5,IWF\n"
        f'MD5,{zeros_start.upper()}, csam ,5,"IWF, November"\n'
        f"phash,{'0' * 16},csam,4,local\n"
    )
    data = load_hash_columns(path)
    index = HashIndex.from_lists([data])
    end = index.exact("md5", zeros_end)
    start = index.exact("md5", zeros_start)
    assert end is not None and end.line == 2 and end.hash == zeros_end
    assert (
        start is not None and start.line == 3 and start.source == "IWF, November" and start.category == "csam"
    )
    assert index.exact("md5", "00" * 16) is None and index.exact("md5", "ab" + "00" * 14 + "01") is None
    near = index.nearest("phash", 0b111)
    assert near is not None and near[1] == 3 and near[0].severity == 4


def test_first_list_wins_for_a_hash_in_two_lists(tmp_path: Path) -> None:
    from netmon.lists.hashindex import HashIndex
    from netmon.lists.hashlists import load_hash_columns

    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(f"type,hash,category,severity,source\nsha1,{'1' * 40},csam,5,IWF\n")
    two.write_text(f"type,hash,category,severity,source\nsha1,{'1' * 40},local,3,school\n")
    index = HashIndex.from_lists([load_hash_columns(one), load_hash_columns(two)])
    found = index.exact("sha1", "1" * 40)
    assert found is not None and found.file == str(one) and found.category == "csam"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b"type,hash,category,severity,source\nmd5," + b"a" * 32 + b",caf\xe9,5,x\n")
    (error,) = check_hash_list(path).errors
    assert error.startswith(f"{path}: not UTF-8 text") and "save it as UTF-8" in error


def test_many_errors_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("type,hash,category,severity,source\n" + "md5,xyz,csam,5,x\n" * 1500)
    errors = check_hash_list(path).errors
    assert len(errors) == 1001 and errors[-1] == f"{path}: 500 more problems not shown"


def test_a_large_list_loads_compactly(tmp_path: Path) -> None:
    """300k hashes load as arrays (tens of MB, not a Python object per line)."""
    import os
    import resource

    import numpy as np

    from netmon.lists.hashindex import HashIndex
    from netmon.lists.hashlists import load_hash_columns

    rng = np.random.default_rng(5)
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("type,hash,category,severity,source\n")
        for v in rng.integers(0, 2**63, 150_000, dtype=np.int64).tolist():
            fh.write(f"phash,{v:016x},csam,5,IWF\n")
        for _ in range(150_000):
            fh.write(f"sha256,{os.urandom(32).hex()},csam,5,IWF\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    index = HashIndex.from_lists([load_hash_columns(path)])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(index) == 300_000
    assert grown_mb < 120, f"loading grew memory by {grown_mb:.0f} MB"
