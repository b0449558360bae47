"""netmon.scan.search_terms: every engine in search_engines.yaml, and the table's own validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.errors import ConfigError
from netmon.scan.search_terms import ENGINES_FILE, engines, load_engines, search_query


@pytest.mark.parametrize(
    ("url", "engine", "query"),
    [
        ("https://www.google.com/search?q=how+to+self+harm&oq=how", "google", "how to self harm"),
        ("https://www.google.co.uk/search?client=firefox&q=kms%20now", "google", "kms now"),
        ("https://www.google.com.au/search?q=a", "google", "a"),
        ("https://www.google.de/search?q=%C3%BCber", "google", "\u00fcber"),
        ("https://google.fr/webhp?q=bonjour", "google", "bonjour"),
        ("https://www.google.com/complete/search?client=gws&q=sui", "google", "sui"),
        ("https://images.google.com/images?q=cats", "google", "cats"),
        ("https://www.google.com/maps/search/drug+dealers+near+me", "google", "drug dealers near me"),
        ("https://www.bing.com/search?q=bing+words&form=QBLH", "bing", "bing words"),
        ("https://www.bing.com/images/search?q=pictures", "bing", "pictures"),
        ("https://www.bing.com/AS/Suggestions?qry=typing", "bing", "typing"),
        ("https://duckduckgo.com/?q=duck+words&t=h_", "duckduckgo", "duck words"),
        ("https://html.duckduckgo.com/html/?q=plain", "duckduckgo", "plain"),
        ("https://duckduckgo.com/ac/?q=sugg", "duckduckgo", "sugg"),
        ("https://links.duckduckgo.com/d.js?q=script+results&l=uk-en", "duckduckgo", "script results"),
        ("https://search.yahoo.com/search?p=yahoo+words", "yahoo", "yahoo words"),
        (
            "https://uk.search.yahoo.com/search;_ylt=AwrE;_ylc=X1MD?p=matrix+params&fr=yfp",
            "yahoo",
            "matrix params",
        ),
        ("https://search.yahoo.co.jp/search?p=tokyo", "yahoo", "tokyo"),
        ("https://www.youtube.com/results?search_query=video+words", "youtube", "video words"),
        ("https://m.youtube.com/results?search_query=mobile", "youtube", "mobile"),
        ("https://www.ecosia.org/search?method=index&q=trees", "ecosia", "trees"),
        ("https://www.ecosia.org/images?q=pics", "ecosia", "pics"),
        (
            "https://en.wikipedia.org/w/index.php?search=wiki+words&title=Special%3ASearch",
            "wikipedia",
            "wiki words",
        ),
        ("https://en.wikipedia.org/wiki/Special:Search?search=special", "wikipedia", "special"),
        ("https://cy.wikipedia.org/wiki/Special:Search/Path_Query", "wikipedia", "Path Query"),
        ("https://en.m.wikipedia.org/w/api.php?action=opensearch&search=sugg", "wikipedia", "sugg"),
        ("https://www.tiktok.com/search?q=tok+words", "tiktok", "tok words"),
        ("https://www.tiktok.com/search/video?q=videos", "tiktok", "videos"),
        ("https://www.tiktok.com/tag/selfharm", "tiktok", "selfharm"),
        ("https://www.instagram.com/explore/tags/self_harm/", "instagram", "self harm"),
        ("https://www.instagram.com/explore/search/keyword/?q=insta", "instagram", "insta"),
        ("https://www.reddit.com/search/?q=reddit+words", "reddit", "reddit words"),
        ("https://www.reddit.com/search.json?q=api+words", "reddit", "api words"),
        ("https://old.reddit.com/r/depression/search?q=in+sub&restrict_sr=on", "reddit", "in sub"),
    ],
)
def test_every_engine(url: str, engine: str, query: str) -> None:
    assert search_query(url) == (engine, query)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.google.com/",
        "https://www.google.com/search?q=",
        "https://www.google.com/search?q=+++",
        "https://www.google.com/maps",
        "https://example.com/search?q=x",
        "https://notgoogle.com/search?q=x",
        "https://google.com.evil.example/search?q=x",
        "https://www.bing.com/search?other=x",
        "https://www.youtube.com/watch?v=abc",
        "https://en.wikipedia.org/wiki/Cat",
        "https://www.reddit.com/r/cats/",
        "not a url",
        "",
        "http://[::1/search?q=x",
    ],
)
def test_not_a_search(url: str) -> None:
    assert search_query(url) is None


def test_host_override_for_transparent_mode() -> None:
    assert search_query("https://142.250.1.1/search?q=by+ip", host="www.google.com") == ("google", "by ip")


def test_every_engine_named_in_the_issue_is_in_the_table() -> None:
    names = {e.name for e in engines()}
    assert names >= {
        "google",
        "bing",
        "duckduckgo",
        "yahoo",
        "youtube",
        "ecosia",
        "wikipedia",
        "tiktok",
        "instagram",
        "reddit",
    }


def test_long_query_is_cut_and_whitespace_collapsed() -> None:
    engine, query = search_query("https://www.google.com/search?q=" + "a%0A%09b+" * 2000) or ("", "")
    assert engine == "google" and len(query) == 2048 and "\n" not in query


def test_shipped_table_loads() -> None:
    assert load_engines(ENGINES_FILE)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("engines: []\n", "engines: must be a mapping"),
        ("engines:\n  x:\n    hosts: [a.com]\n", "engines.x"),
        ("engines:\n  x:\n    hosts: [a.com]\n    paths:\n      search: q\n", "must start with '/'"),
        ("engines:\n  x:\n    hosts: [a.com]\n    paths:\n      /s: ~\n", "give a query parameter"),
        ("engines: [unclosed\n", "cannot read"),
    ],
)
def test_bad_table_is_a_located_config_error(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "engines.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_engines(path)
    assert str(path) in str(info.value) and where in str(info.value)


def test_a_new_engine_is_data_only(tmp_path: Path) -> None:
    path = tmp_path / "engines.yaml"
    path.write_text(
        "engines:\n  kidsearch:\n    hosts: ['kids.{tld}']\n    paths:\n      /find: [query, q]\n"
    )
    (engine,) = load_engines(path)
    assert engine.host.fullmatch("www.kids.co.uk")
    assert engine.paths[0].pattern.fullmatch("/find")
