from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from netmon.lists.urllists import UrlIndex, check_url_list, load_url_list, url_key

LIST = """type,value,category,severity,source
url,http://bad.example/attack/video.html,terrorism,5,CTIRU
prefix,https://forum.example/board/extreme/,terrorism,4,CTIRU
domain,gamblingsite.example,gambling,2,local
domain,xn--bcher-kva.example,test,1,local
url,cdn.example/img/x.jpg?id=7,csam,5,IWF
domain,203.0.113.9,malware,3,local
domain,2001:db8::7,malware,3,local
domain,host1.example,test,1,local
"""


@pytest.fixture
def index(tmp_path: Path) -> UrlIndex:
    path = tmp_path / "ctiru.csv"
    path.write_text(LIST)
    return UrlIndex(load_url_list(path))


@pytest.mark.parametrize(
    ("url", "categories"),
    [
        ("http://bad.example/attack/video.html", ["terrorism"]),
        ("https://BAD.example:443/attack/video.html#t=1", ["terrorism"]),
        ("http://bad.example/attack/video.html?x=1", ["terrorism"]),
        ("http://bad.example/attack/video.html/", ["terrorism"]),
        ("http://bad.example/attack/", []),
        ("https://forum.example/board/extreme/thread/9?page=2", ["terrorism"]),
        ("https://forum.example/board/", []),
        ("https://www.forum.example/board/extreme/", []),
        ("https://gamblingsite.example/", ["gambling"]),
        ("https://a.b.gamblingsite.example/slots", ["gambling"]),
        ("https://notgamblingsite.example/", []),
        ("https://gamblingsite.example.evil.test/", []),
        ("http://bücher.example/", ["test"]),
        ("https://cdn.example/img/x.jpg?id=7", ["csam"]),
        ("https://cdn.example/img/x.jpg?id=8", []),
        # an address matches only itself, never as a "parent domain" of something
        ("http://203.0.113.9/login", ["malware"]),
        ("http://[2001:db8::7]:8080/x", ["malware"]),
        ("http://a.host1.example/", ["test"]),
    ],
)
def test_match_url(index: UrlIndex, url: str, categories: list[str]) -> None:
    assert [e.category for e in index.match_url(url)] == categories


@pytest.mark.parametrize(
    ("host", "found"),
    [
        ("gamblingsite.example", True),
        ("www.gamblingsite.example", True),
        ("GAMBLINGSITE.EXAMPLE.", True),
        ("gamblingsite.example:443", True),
        ("bad.example", False),
        ("example", False),
        ("", False),
        ("203.0.113.9", True),
        ("113.9", False),
        ("[2001:db8::7]", True),
    ],
)
def test_match_host_for_sni(index: UrlIndex, host: str, found: bool) -> None:
    assert bool(index.match_host(host)) is found


def test_an_empty_list_matches_nothing() -> None:
    empty = UrlIndex(())
    assert empty.match_url("https://gamblingsite.example/") == () and empty.match_host("x.example") == ()


def test_entries_carry_file_and_line(index: UrlIndex) -> None:
    (entry,) = index.match_url("https://sub.gamblingsite.example/x")
    assert entry.line == 4 and entry.file.endswith("ctiru.csv") and entry.type == "domain"


def test_url_key() -> None:
    assert url_key("HTTP://User@Example.COM:8080/a/b?c=d#frag") == "example.com/a/b?c=d"
    assert url_key("example.com") == "example.com/"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("regex,.*,x,1,y", "type must be one of url, prefix, domain"),
        ("domain,,x,1,y", "value is empty"),
        ("domain,not a host,x,1,y", "domain must be a host name"),
        ("url,/path/only,x,1,y", "must start with a host"),
        ("domain,a.example,x,0,y", "severity must be 1-5"),
        ("domain,a.example,,2,y", "category is empty"),
    ],
)
def test_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "l.csv"
    path.write_text(f"type,value,category,severity,source\n{line}\n")
    entries, errors = check_url_list(path)
    assert not entries and errors[0].startswith(f"{path}:2: ") and message in errors[0]


def test_cli_check(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(LIST)
    bad = tmp_path / "bad.csv"
    bad.write_text("type,value,category,severity,source\ndomain,ok.example,x,1,y\nfoo,bar,x,1,y\n")
    runner = CliRunner()
    result = runner.invoke(main, ["lists", "check", str(good)])
    assert result.exit_code == 0 and "ok, 8 entries (domain 5, prefix 1, url 2)" in result.output
    result = runner.invoke(main, ["lists", "check", str(bad)])
    assert result.exit_code == 1 and f"{bad}:3: type must be one of" in result.output
