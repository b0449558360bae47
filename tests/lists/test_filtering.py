from __future__ import annotations

from pathlib import Path

import pytest

from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.errors import ConfigError
from netmon.lists.blockpage import render_block_page
from netmon.lists.filtering import EVERYONE, build_lists, load_filtering, parse_filtering
from netmon.lists.safesearch import safe_search

URLS = """type,value,category,severity,source
domain,casino.example,gambling,2,local
domain,extreme.example,terrorism,5,CTIRU
"""


def _policy(tmp_path: Path, text: str) -> Path:
    (tmp_path / "urls.csv").write_text(URLS)
    path = tmp_path / "filtering.yaml"
    path.write_text(text)
    return path


POLICY = """
groups:
  everyone: {categories: {terrorism: block}}
  year7: {categories: {gambling: block}, safe_search: true}
  sixth_form: {categories: {gambling: monitor}}
allow:
  - domain: news.casino.example
    reason: "Journalism project on gambling harm, Mr Jones"
    added_by: DSL
url_lists: [urls.csv]
ut1: off
"""


def test_default_policy_is_monitor_only() -> None:
    policy = load_filtering(DEFAULT_POLICY_DIR / "filtering.yaml")
    assert not policy.blocks_anything
    assert policy.blocked({EVERYONE, "year7", "staff"}, ["adult", "gambling", "csam", "terrorism"]) == ()


def test_block_per_group_and_category(tmp_path: Path) -> None:
    lists = build_lists(load_filtering(_policy(tmp_path, POLICY)))
    policy = lists.policy
    hit = [e.category for e in lists.lookup_url("https://www.casino.example/slots")]
    assert hit == ["gambling"]
    year7 = policy.names_for({"user": "amy", "year_group": "Year 7", "groups": []})
    assert {"everyone", "year7", "7", "Year 7"} <= year7
    assert policy.blocked(year7, hit) == ("gambling",)
    sixth = policy.names_for({"user": "bo", "groups": ["sixth_form"]})
    assert policy.blocked(sixth, hit) == ()
    assert policy.blocked(policy.names_for(None), ["terrorism"]) == ("terrorism",)
    assert policy.safe_search(year7) and not policy.safe_search(sixth)


def test_requests_need_a_url_lookup_only_when_something_is_listed(tmp_path: Path) -> None:
    assert build_lists(load_filtering(_policy(tmp_path, POLICY))).lists_urls
    allow_only = POLICY.replace("url_lists: [urls.csv]\n", "")
    lists = build_lists(load_filtering(_policy(tmp_path, allow_only)))
    assert not lists.lists_urls and lists.lookup_url("https://www.casino.example/slots") == ()


def test_allow_list_always_wins_with_reason(tmp_path: Path) -> None:
    lists = build_lists(load_filtering(_policy(tmp_path, POLICY)))
    assert lists.lookup_url("https://news.casino.example/article?id=1") == ()
    assert lists.lookup_host("a.news.casino.example") == ()
    assert lists.lookup_host("casino.example")
    allow = lists.policy.allowed("https://news.casino.example/")
    assert allow is not None and allow.reason.startswith("Journalism") and allow.added_by == "DSL"
    assert allow.where.endswith("allow[0]")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "groups: {y7: {categories: {adult: deny}}}",
            "groups.y7.categories.adult",
            "must be block or monitor",
        ),
        ("groups: {y7: {safe_search: yes please}}", "groups.y7.safe_search", "must be true or false"),
        ("groups: {y7: {blok: [adult]}}", "groups.y7.blok", "unknown key"),
        ("allow: [{domain: a.example}]", "allow[0].reason", "needs a reason"),
        ("allow: [{domain: a.example, url: b.example/x, reason: r}]", "allow[0]", "exactly one of"),
        ("allow: [{domain: 'not a host', reason: r}]", "allow[0].domain", "must be a host name"),
        ("hash_threshold: 40", "hash_threshold", "0-32"),
        ("default: block", "default", "must be monitor"),
        ("blocks: []", "blocks", "unknown key"),
    ],
)
def test_errors_name_file_and_key(text: str, where: str, message: str) -> None:
    from ruamel.yaml import YAML

    with pytest.raises(ConfigError) as info:
        parse_filtering(YAML(typ="safe").load(text), "policy/filtering.yaml")
    assert info.value.where == f"policy/filtering.yaml: {where}"
    assert message in info.value.message


def test_missing_list_file_fails_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "filtering.yaml"
    path.write_text("url_lists: [nope.csv]\nut1: off\n")
    with pytest.raises(ConfigError, match="nope.csv"):
        build_lists(load_filtering(path))


def test_bad_yaml_is_located(tmp_path: Path) -> None:
    path = tmp_path / "filtering.yaml"
    path.write_text("groups:\n  y7: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_filtering(path)


@pytest.mark.parametrize(
    ("host", "path", "query", "engine", "expected", "headers"),
    [
        ("www.google.com", "/search", [("q", "cats")], "google", [("q", "cats"), ("safe", "active")], ()),
        (
            "www.google.co.uk",
            "/search",
            [("q", "x"), ("safe", "off")],
            "google",
            [("q", "x"), ("safe", "active")],
            (),
        ),
        ("www.bing.com", "/search", [("q", "x")], "bing", [("q", "x"), ("adlt", "strict")], ()),
        (
            "www.bing.com",
            "/images/search",
            [("q", "x"), ("adlt", "off")],
            "bing",
            [("q", "x"), ("adlt", "strict")],
            (),
        ),
        ("duckduckgo.com", "/", [("q", "x")], "duckduckgo", [("q", "x"), ("kp", "1")], ()),
        ("www.youtube.com", "/watch", [("v", "abc")], "youtube", None, (("YouTube-Restrict", "Strict"),)),
        ("m.youtube.com", "/", [], "youtube", None, (("YouTube-Restrict", "Strict"),)),
    ],
)
def test_safe_search_rewrites(
    host: str,
    path: str,
    query: list[tuple[str, str]],
    engine: str,
    expected: list[tuple[str, str]] | None,
    headers: tuple[tuple[str, str], ...],
) -> None:
    change = safe_search(host, path, query)
    assert change is not None and change.engine == engine
    assert (list(change.query) if change.query is not None else None) == expected
    assert change.headers == headers


@pytest.mark.parametrize(
    ("host", "path", "query"),
    [
        ("www.google.com", "/search", [("q", "x"), ("safe", "active")]),
        ("mail.google.com", "/search", []),
        ("www.google.com", "/maps", []),
        ("pages.test", "/search", []),
        ("www.bing.com", "/maps", []),
        ("google.evil.test", "/search", []),
    ],
)
def test_safe_search_leaves_others_alone(host: str, path: str, query: list[tuple[str, str]]) -> None:
    assert safe_search(host, path, query) is None


def test_block_page_escapes_and_explains() -> None:
    page = render_block_page(
        host="evil.test",
        url='https://evil.test/?q=<script>alert("x")</script>',
        categories=["gambling", "<b>x</b>"],
        lists=["urls.csv"],
        review="Email <dsl@school.example>",
        reference="ABC123",
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "gambling" in page
    assert "Email &lt;dsl@school.example&gt;" in page and "ABC123" in page
    assert "blocked" in page.lower() and "review" in page.lower() or "mistake" in page.lower()


def test_cli_lookup_explains_the_decision(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from netmon.cli import main

    path = _policy(tmp_path, POLICY)
    runner = CliRunner()
    args = ["lists", "lookup", "--filtering", str(path), "--url-list", str(tmp_path / "urls.csv")]
    blocked = runner.invoke(main, [*args, "https://www.casino.example/x", "--group", "year7"])
    assert blocked.exit_code == 0, blocked.output
    assert (
        "gambling (severity 2): domain casino.example" in blocked.output
        and "block (gambling)" in blocked.output
    )
    monitored = runner.invoke(main, [*args, "www.casino.example", "--group", "sixth_form"])
    assert "monitor (page shown, incident recorded)" in monitored.output
    allowed = runner.invoke(main, [*args, "https://news.casino.example/"])
    assert "allow-listed by" in allowed.output and "Journalism project" in allowed.output
    clean = runner.invoke(main, [*args, "https://example.org/", "--state-dir", str(tmp_path / "nostate")])
    assert "no list matches; decision: allow" in clean.output


def _audit_rows(url: str) -> list[tuple[str, str | None, str | None, dict]]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from netmon.store.db import make_engine
    from netmon.store.incidents import AuditEvent

    engine = make_engine(url)
    with Session(engine) as session:
        rows = [
            (e.action, e.actor, e.subject, e.detail)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
    engine.dispose()
    return [r for r in rows if r[0].startswith("filtering.allow")]


def test_allow_list_changes_are_audited(tmp_path: Path, store_url: str) -> None:
    from netmon.lists.allow_audit import record_allow_changes

    state = tmp_path / "state"
    first = parse_filtering(
        {
            "allow": [
                {"domain": "bbc.co.uk", "reason": "news", "added_by": "DSL"},
                {"prefix": "example.org/science/", "reason": "biology unit"},
            ]
        },
        "f.yaml",
    )
    assert record_allow_changes(store_url, state, first) == (2, 0)
    assert record_allow_changes(store_url, state, first) == (0, 0)  # a restart records nothing new
    second = parse_filtering(
        {"allow": [{"domain": "bbc.co.uk", "reason": "news and weather", "added_by": "DSL"}]}, "f.yaml"
    )
    assert record_allow_changes(store_url, state, second) == (1, 1)
    rows = _audit_rows(store_url)
    assert [(a, actor, subject) for a, actor, subject, _ in rows] == [
        ("filtering.allow.added", "DSL", "domain:bbc.co.uk"),
        ("filtering.allow.added", "policy", "prefix:example.org/science/"),
        ("filtering.allow.added", "DSL", "domain:bbc.co.uk"),
        ("filtering.allow.removed", "policy", "prefix:example.org/science/"),
    ]
    assert rows[0][3]["reason"] == "news" and rows[2][3]["reason"] == "news and weather"
