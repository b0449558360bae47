"""Host-scoped overlay lines: a school quiets a phrase (a removal, or further exceptions) on one site's or
one page's bodies only; what a pupil types is matched against the whole library everywhere, and a
forged Host header cannot borrow a scope (the scan uses the host the job is given)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from netmon.cli import main
from netmon.errors import ConfigError
from netmon.scan.findings import FlowContext
from netmon.scan.job import ScanJob, scan_job
from netmon.scan.library import check_paths, load_library
from netmon.scan.matching import Matcher
from netmon.scan.site_scope import check_scope, scope_applies

CATEGORIES = "violence | Violence | Threats\nsuicide | Suicide | Suicide\n"
LIBRARY = "@category violence\n@language en\nshoot | 4 | unless: photo shoot\nkill you | 4\n"
SUICIDE = "@category suicide\n@language en\nkill myself | 5\n"
PAGE = "<html><body><p>{}</p></body></html>"


def make(tmp_path: Path, overlay: str, suicide_overlay: str = "") -> tuple[Path, Path]:
    root, ov = tmp_path / "library", tmp_path / "overlay"
    (root / "en").mkdir(parents=True)
    (ov / "en").mkdir(parents=True)
    (root / "categories.txt").write_text(CATEGORIES)
    (root / "en" / "violence.txt").write_text(LIBRARY)
    (root / "en" / "suicide.txt").write_text(SUICIDE)
    (ov / "en" / "violence.txt").write_text("@category violence\n@language en\n" + overlay)
    if suicide_overlay:
        (ov / "en" / "suicide.txt").write_text("@category suicide\n@language en\n" + suicide_overlay)
    return root, ov


def fired(matcher: Matcher, url: str, text: str, source: str = "page", host: str | None = None) -> list[str]:
    """The phrases a real scan job reports for ``text`` sent (``form``) or received (``page``)."""
    from urllib.parse import urlsplit

    ctx = FlowContext(time=0.0, client_ip="", host=host or urlsplit(url).hostname or "", url=url)
    if source == "page":
        job = ScanJob.for_http(
            ctx, response_status=200, response_headers=(("Content-Type", "text/html"),),
            response_body=PAGE.format(text).encode(),
        )  # fmt: skip
    else:
        ctx = FlowContext(time=0.0, client_ip="", host=ctx.host, url=url, method="POST")
        job = ScanJob.for_http(
            ctx, request_headers=(("Content-Type", "application/x-www-form-urlencoded"),),
            request_body=("comment=" + text.replace(" ", "+")).encode(),
        )  # fmt: skip
    return [h.phrase for f in scan_job(job, matcher).findings for h in f.hits]


@pytest.fixture
def matcher(tmp_path: Path) -> Matcher:
    root, ov = make(
        tmp_path,
        "shoot | on: sport.example; unless: shoot the winning\n"
        "-kill you | on: games.example/wiki, 10.1.2.3\n",
        "-kill myself | on: novels.example\n",
    )
    return Matcher.compile(load_library(root, ov))


def test_scoped_exception_holds_on_the_site_and_its_subdomains_only(matcher: Matcher) -> None:
    text = "we will shoot the winning goal"
    assert fired(matcher, "http://sport.example/report", text) == []
    assert fired(matcher, "https://live.sport.example/x?y=1", text) == []
    assert fired(matcher, "http://notsport.example/report", text) == ["shoot"]
    assert fired(matcher, "http://sport.example.evil.test/report", text) == ["shoot"]
    assert fired(matcher, "http://news.example/report", text) == ["shoot"]
    # the exception only cancels the hit it overlaps: another shoot on the same page still fires
    assert fired(matcher, "http://sport.example/r", "we will shoot the winning goal. i will shoot him") == [
        "shoot"
    ]
    # the library's own exception still holds there
    assert fired(matcher, "http://sport.example/r", "a photo shoot") == []
    # the exception is normalised as traffic is, and starts at a word start (it may run on)
    assert fired(matcher, "http://sport.example/r", "we will SHOOT the W1NNING goal") == []
    assert fired(matcher, "http://sport.example/r", "we will shoot the winnings") == []
    assert fired(matcher, "http://sport.example/r", "we will shoot, the winning") == []
    assert fired(matcher, "http://sport.example/r", "we will shoot the win") == ["shoot"]


def test_scoped_removal_by_page_prefix_and_by_address(matcher: Matcher) -> None:
    assert fired(matcher, "http://games.example/wiki", "i will kill you") == []
    assert fired(matcher, "http://games.example/wiki/boss?q=1", "i will kill you") == []
    assert fired(matcher, "http://games.example/wikipedia", "i will kill you") == ["kill you"]
    assert fired(matcher, "http://games.example/", "i will kill you") == ["kill you"]
    assert fired(matcher, "http://www.games.example/wiki", "i will kill you") == [
        "kill you"
    ]  # page: exact host
    assert fired(matcher, "http://10.1.2.3/", "i will kill you") == []
    assert fired(matcher, "http://10.1.2.30/", "i will kill you") == ["kill you"]


def test_what_a_pupil_types_is_never_quieted_by_a_scope(matcher: Matcher) -> None:
    # the same words posted in a form on the quieted site still fire: scopes apply to page bodies only
    assert fired(matcher, "http://novels.example/comment", "i want to kill myself", source="form") == [
        "kill myself"
    ]
    assert fired(matcher, "http://novels.example/chapter", "i want to kill myself") == []
    assert fired(matcher, "http://sport.example/c", "we will shoot the winning goal", source="form") == [
        "shoot"
    ]
    # a search typed on any engine is matched in full
    ctx = FlowContext(
        time=0.0, client_ip="", host="www.bing.com", url="http://www.bing.com/search?q=kill+myself"
    )
    assert [h.phrase for h in scan_job(ScanJob.for_http(ctx), matcher).hits] == ["kill myself"]


def test_scope_follows_the_host_the_job_is_given_not_the_url(matcher: Matcher) -> None:
    # the proxy gives the job the host it held to the real destination; a URL naming the quieted site
    # does not make another host's page quiet
    assert fired(matcher, "http://novels.example/chapter", "i want to kill myself", host="evil.test") == [
        "kill myself"
    ]


def test_an_overlay_without_scoped_lines_changes_nothing(tmp_path: Path) -> None:
    root, ov = make(tmp_path, "")
    library = load_library(root, ov)
    assert library.scoped == ()
    assert fired(Matcher.compile(library), "http://sport.example/r", "we will shoot the winning goal") == [
        "shoot"
    ]


def test_fingerprint_changes_with_a_scoped_line(tmp_path: Path) -> None:
    root, ov = make(tmp_path, "")
    before = load_library(root, ov).fingerprint
    (ov / "en" / "violence.txt").write_text("@category violence\n@language en\n-shoot | on: sport.example\n")
    assert load_library(root, ov).fingerprint != before


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("shoot | on: http://sport.example", "without its scheme"),
        ("shoot | on: *.sport.example; unless: shoot it", "subdomains are included"),
        ("shoot | on: sport.example:8080; unless: shoot it", "no port"),
        ("shoot | on: sport example; unless: shoot it", "not a host name"),
        ("shoot | on: sport.example/a?b; unless: shoot it", "the query is not part of a scope"),
        ("shoot | on: sport.example", "needs 'unless:' words"),
        ("shoot | on: ; unless: shoot it", "needs at least one site"),
        ("-shoot | on: sport.example; unless: shoot it", "a scoped removal takes only 'on:'"),
        ("shoot | on: sport.example; with: goal", "only 'on:' and 'unless:'"),
        ("shoot | on: sport.example; on: a.example; unless: x shoot", "given twice"),
        ("shoot | on: a.example | unless: shoot it", "a host-scoped line is"),
        ("shoot | 4 | on: sport.example", "without a severity"),
        ("shoot | on: a.example; unless: !!!", "normalises to nothing"),
    ],
)
def test_bad_scoped_lines_are_located_errors(tmp_path: Path, line: str, message: str) -> None:
    root, ov = make(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as raised:
        load_library(root, ov)
    assert str(raised.value).startswith(f"{ov / 'en' / 'violence.txt'}:3: ")
    assert message in str(raised.value)
    report = check_paths([root], overlay=ov)
    where = ov / "en" / "violence.txt"
    assert [str(p) for p in report.errors] == [f"{where}:3: error: {raised.value.message}"]


def test_scoped_line_in_the_library_is_an_error_and_a_missing_phrase_a_warning(tmp_path: Path) -> None:
    root, ov = make(tmp_path, "-no such thing | on: a.example\n")
    (root / "en" / "violence.txt").write_text(LIBRARY + "shoot | on: a.example; unless: shoot it\n")
    report = check_paths([root], overlay=ov)
    assert [str(p) for p in report.errors] == [
        f"{root / 'en' / 'violence.txt'}:5: error: a host-scoped 'on:' line belongs in the school's overlay, "
        "not the library"
    ]
    (root / "en" / "violence.txt").write_text(LIBRARY)
    report = check_paths([root], overlay=ov)
    assert report.ok
    assert [str(p) for p in report.warnings] == [
        f"{ov / 'en' / 'violence.txt'}:3: warning: scoped line for 'no such thing': no such phrase in "
        "violence of the library"
    ]


def test_library_check_command_reports_a_scoped_line(tmp_path: Path) -> None:
    root, ov = make(tmp_path, "shoot | on: sport.example:80; unless: shoot it\n")
    result = CliRunner().invoke(main, ["library", "check", str(root), "--overlay", str(ov), "-q"])
    assert result.exit_code == 1
    assert f"{ov / 'en' / 'violence.txt'}:3: error: on: no port in a scope" in result.output


@pytest.mark.parametrize(
    ("scope", "host", "path", "applies"),
    [
        ("example.org", "example.org", "/", True),
        ("example.org", "a.b.example.org", "/x", True),
        ("example.org", "badexample.org", "/", False),
        ("example.org", "example.org.evil.test", "/", False),
        ("example.org/news", "example.org", "/news", True),
        ("example.org/news", "example.org", "/news/today", True),
        ("example.org/news", "example.org", "/newsletter", False),
        ("example.org/news/", "example.org", "/news/a", True),
        ("example.org/news", "www.example.org", "/news", False),
        ("10.0.0.1", "10.0.0.1", "/", True),
        ("10.0.0.1", "110.0.0.1", "/", False),
    ],
)
def test_scope_applies(scope: str, host: str, path: str, applies: bool) -> None:
    assert check_scope(scope)[0] == scope
    assert scope_applies(scope, host, path) is applies
