"""netmon.scan.job: whole scan jobs with the real matcher over a small test library."""

from __future__ import annotations

import copy
import gzip
import json
import multiprocessing
import pickle
import re
import time
import tracemalloc
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netmon.ops import counters
from netmon.scan import decoding, extract
from netmon.scan import job as scanner
from netmon.scan.findings import SOURCES, FlowContext, ScanResult
from netmon.scan.job import ScanJob, count_stats, scan_job
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher
from netmon.scan.snapshot import open_snapshot, sanitise_html

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PAGES = FIXTURES / "pages"
LIBRARY = FIXTURES / "scan-library"
ALL_REASONS = set(decoding.REASONS) | set(extract.REASONS) | set(scanner.REASONS)

HTML = b"""<!DOCTYPE html><html><head><title>Forum</title><script>var s = "suicide";</script>
<link rel="stylesheet" href="https://cdn.example/s.css">
<style>body { background: url(https://t.example/p.gif) }</style>
</head><body onload="track()"><h1>Thread</h1><p>I think I will kill myself tonight</p>
<img src="https://t.example/pixel.gif" alt="photo"><iframe src="https://ads.example/"></iframe>
<a href="javascript:alert(1)">link</a><a href="/safe">safe link</a><object data="x.swf"></object>
<form action="https://x.example/post"><input name="q" value="typed"></form></body></html>"""
BENIGN = (PAGES / "benign.html").read_bytes()


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(LIBRARY))


def ctx(url: str = "https://forum.example/thread/1", host: str = "forum.example") -> FlowContext:
    return FlowContext(time=time.time(), client_ip="10.0.0.7", host=host, url=url, user="pupil1")


def page_job(
    body: bytes, content_type: str = "text/html; charset=utf-8", encoding: str | None = None, **kw: object
) -> ScanJob:
    headers = [("Content-Type", content_type)] + ([("Content-Encoding", encoding)] if encoding else [])
    return ScanJob(
        context=ctx(),
        request_url="https://forum.example/thread/1",
        response_status=200,
        response_headers=tuple(headers),
        response_body=body,
        **kw,
    )  # type: ignore[arg-type]


def phrases(result: ScanResult, source: str | None = None) -> set[str]:
    return {h.phrase for f in result.findings if source in (None, f.source) for h in f.hits}


def check_offsets(result: ScanResult) -> None:
    for finding in result.findings:
        assert finding.source in SOURCES
        for hit in finding.hits:
            assert finding.text[hit.start : hit.end] == hit.matched_text


# ---------------------------------------------------------------------------------------------------
# Sources


def test_search_query_from_url(matcher: Matcher) -> None:
    url = "https://www.google.co.uk/search?q=how+to+kill+myself"
    result = scan_job(ScanJob(context=ctx(url, "www.google.co.uk"), request_url=url), matcher)
    (finding,) = result.findings
    assert (finding.source, finding.label, finding.text) == ("search", "google", "how to kill myself")
    assert "kill myself" in phrases(result)
    check_offsets(result)


def test_form_post_fields(matcher: Matcher) -> None:
    job = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://forum.example/reply",
        request_headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        request_body=b"title=hello&body=I+want+to+kill+myself&password=kms",
    )
    result = scan_job(job, matcher)
    (finding,) = result.findings
    assert (finding.source, finding.label, finding.text) == ("form", "body", "I want to kill myself")
    assert "kms" not in {h.matched_text for h in result.hits}  # the password field is never scanned
    check_offsets(result)


def test_multipart_fields_and_file_skip(matcher: Matcher) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="caption"\r\n\r\nself harm pics\r\n'
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
        b"\x89PNG\x00\x00kill myself\r\n--b--\r\n"
    )
    job = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://forum.example/upload",
        request_headers=(("Content-Type", "multipart/form-data; boundary=b"),),
        request_body=body,
    )
    result = scan_job(job, matcher)
    assert [(f.source, f.label) for f in result.findings] == [("form", "caption")]
    assert phrases(result) == {"self harm"}
    assert "multipart-file" in result.stats.skipped


def test_json_prompt_is_chat(matcher: Matcher) -> None:
    prompt = {
        "model": "gpt",
        "messages": [{"role": "user", "content": "what is the best way to kill myself"}],
    }
    job = ScanJob(
        context=ctx("https://chat.example/api"),
        request_method="POST",
        request_url="https://chat.example/api",
        request_headers={"content-type": "application/json"},
        request_body=json.dumps(prompt).encode(),
    )
    result = scan_job(job, matcher)
    assert {f.source for f in result.findings} == {"chat"}
    assert "kill myself" in phrases(result, "chat")
    check_offsets(result)


def test_sse_answer_is_chat(matcher: Matcher) -> None:
    events = "".join(
        f"data: {json.dumps({'choices': [{'delta': {'content': t}}]})}\n\n"
        for t in ("You said you ", "want to kms", ". Please call")
    )
    result = scan_job(page_job(events.encode() + b"data: [DONE]\n\n", "text/event-stream"), matcher)
    (finding,) = result.findings
    assert finding.source == "chat" and finding.text == "You said you want to kms. Please call"
    assert phrases(result) == {"kms"}
    assert result.snapshot is not None and result.snapshot_type == "text/plain"


@pytest.mark.parametrize("from_client", [True, False])
def test_websocket_messages_both_ways(matcher: Matcher, from_client: bool) -> None:
    job = ScanJob(context=ctx(), ws_message='42["chat",{"text":"i will kms"}]', ws_from_client=from_client)
    result = scan_job(job, matcher)
    (finding,) = result.findings
    assert finding.source == "websocket"
    assert finding.label == ("ws client->server" if from_client else "ws server->client")
    assert result.snapshot is None
    check_offsets(result)


def test_websocket_bytes_message(matcher: Matcher) -> None:
    text = scan_job(ScanJob(context=ctx(), ws_message="self harm".encode("utf-16")), matcher)
    assert phrases(text) == {"self harm"}
    binary = scan_job(ScanJob(context=ctx(), ws_message=b"\x00\x01\x02\x03kill myself\x00\x00\x00"), matcher)
    assert binary.findings == () and binary.stats.skipped == ("binary-message",)


# ---------------------------------------------------------------------------------------------------
# Response bodies: encodings and charsets

ENCODE = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}


@pytest.mark.parametrize("encoding", [None, *ENCODE])
def test_page_in_every_encoding(matcher: Matcher, encoding: str | None) -> None:
    body = ENCODE[encoding](HTML) if encoding else HTML
    result = scan_job(page_job(body, encoding=encoding), matcher)
    assert [(f.source, f.label) for f in result.findings] == [("page", "html")]
    assert "kill myself" in phrases(result)
    assert "suicide" not in phrases(result)  # only in a script
    assert result.stats.bytes_scanned == len(HTML)
    check_offsets(result)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("windows-1252.html", "kill myself"),
        ("utf-16le-bom.html", "self harm"),
        ("utf-16be-bom.html", "kms"),
        ("shift_jis.html", "suicide"),
        ("shift_jis-undeclared.html", "suicide"),
        ("koi8-r.xhtml", "self harm"),
        ("windows-1252-undeclared.html", "suicide"),
        ("invalid-utf8.html", "kill myself"),
    ],
)
def test_pages_in_other_charsets(matcher: Matcher, name: str, phrase: str) -> None:
    result = scan_job(page_job((PAGES / name).read_bytes(), "text/html", encoding=None), matcher)
    assert phrase in phrases(result, "page")
    check_offsets(result)


def test_windows_1252_page_gzip_with_header_charset(matcher: Matcher) -> None:
    body = gzip.compress((PAGES / "windows-1252.html").read_bytes())
    result = scan_job(page_job(body, "text/html; charset=windows-1252", "gzip"), matcher)
    (finding,) = result.findings
    assert "I want to kill myself \u2013 \u201cplease\u201d help" in finding.text


def test_json_and_text_responses_are_pages(matcher: Matcher) -> None:
    j = scan_job(page_job(b'{"posts": [{"body": "self harm again"}]}', "application/json"), matcher)
    assert [(f.source, f.label) for f in j.findings] == [("page", "json")]
    t = scan_job(page_job(b"plain kms text", "text/plain"), matcher)
    assert [(f.source, f.label) for f in t.findings] == [("page", "text")]


def test_benign_page_gives_nothing(matcher: Matcher) -> None:
    result = scan_job(page_job(BENIGN), matcher)
    assert result.findings == () and result.snapshot is None
    assert result.stats.bytes_scanned == len(BENIGN)


# ---------------------------------------------------------------------------------------------------
# Snapshot


def test_snapshot_is_sanitised_compressed_and_only_with_hits(matcher: Matcher) -> None:
    result = scan_job(page_job(gzip.compress(HTML), encoding="gzip"), matcher)
    assert result.snapshot_type == "text/html" and result.snapshot is not None
    html = open_snapshot(result.snapshot).decode()
    assert "I think I will kill myself tonight" in html and "safe link" in html and 'alt="photo"' in html
    for removed in (
        "<script",
        "onload",
        "<iframe",
        "pixel.gif",
        "<link",
        "cdn.example",
        "url(",
        "javascript:",
        "<object",
        "x.example/post",
    ):
        assert removed not in html, removed
    assert "Content-Security-Policy" in html


def test_snapshot_is_capped(matcher: Matcher) -> None:
    big = b"<html><body><p>kill myself</p>" + b"<p>filler words here</p>" * 20000 + b"</body></html>"
    result = scan_job(page_job(big, snapshot_cap=10_000), matcher)
    assert result.snapshot is not None and len(open_snapshot(result.snapshot)) <= 10_000


def test_snapshot_of_the_page_when_the_hit_is_the_search(matcher: Matcher) -> None:
    url = "https://www.bing.com/search?q=kms"
    job = ScanJob(
        context=ctx(url, "www.bing.com"),
        request_url=url,
        response_status=200,
        response_headers=(("Content-Type", "text/html"),),
        response_body=BENIGN,
    )
    result = scan_job(job, matcher)
    assert [f.source for f in result.findings] == ["search"]
    assert result.snapshot is not None and b"water cycle" in open_snapshot(result.snapshot)


def test_no_snapshot_for_binary_response(matcher: Matcher) -> None:
    url = "https://www.bing.com/search?q=kms"
    job = ScanJob(
        context=ctx(url, "www.bing.com"),
        request_url=url,
        response_status=200,
        response_headers=(("Content-Type", "image/png"),),
        response_body=b"\x89PNG\r\n\x1a\n",
    )
    result = scan_job(job, matcher)
    assert result.findings and result.snapshot is None
    assert result.stats.skipped == ("binary-type",)


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_compressed_page_labelled_as_an_image_or_a_script_is_still_read(
    matcher: Matcher, encoding: str
) -> None:
    """A pupil's own server cannot hide a page by compressing it and calling it image/png."""
    squash = {"gzip": gzip.compress, "br": brotli.compress, "zstd": zstandard.ZstdCompressor().compress}[
        encoding
    ]
    padding = b"<!-- " + b"x" * 40_000 + b" -->"  # the phrase sits past the bytes read to judge the label
    for label in ("image/png", "application/javascript"):
        result = scan_job(
            page_job(squash(HTML.replace(b"<h1>", padding + b"<h1>")), label, encoding), matcher
        )
        assert "kill myself" in phrases(result), label
    real_png = gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)
    result = scan_job(page_job(real_png, "image/png", "gzip"), matcher)
    assert not result.findings and result.stats.skipped == ("binary-type",)


@pytest.mark.parametrize(
    "evil",
    [
        '<img src=x onerror="alert(1)">',
        "<svg><script>alert(1)</script></svg>",
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<meta http-equiv="refresh" content="0;url=https://x.example">',
        '<base href="https://x.example/">',
        '<embed src="https://x.example/a.swf">',
        '<div style="background-image: url(https://x.example/t)">d</div>',
        '<video poster="https://x.example/p.jpg"></video>',
        '<iframe srcdoc="<script>x</script>"></iframe>',
        '<a href="jav&#x09;ascript:alert(1)">tab</a>',
        "<img/onerror=alert(1)/src=https://x.example/a>",
        '<svg><a xlink:href="javascript:alert(1)" onLoad="alert(2)">s</a><use href="https://x.example/#a"/></svg>',
        '<p style="background: URL(https://x.example/t)">p</p>',
        '<form><button formaction="https://x.example/">b</button></form>',
    ],
)
def test_sanitiser_removes_active_and_loading_content(evil: str) -> None:
    out = sanitise_html(f"<html><head></head><body>{evil}<p>kept</p></body></html>")
    body = out.split("</head>", 1)[1]
    assert "kept" in body
    for bad in ("alert", "x.example", "onerror", "<script", "<embed", "<iframe"):
        assert bad not in body.lower(), (evil, body)


# ---------------------------------------------------------------------------------------------------
# Bad input, caps, skips


def test_compression_bomb_is_a_counted_skip(matcher: Matcher) -> None:
    bomb = zstandard.ZstdCompressor(level=3).compress(b"\0" * (256 << 20))
    tracemalloc.start()
    try:
        result = scan_job(page_job(bomb, encoding="zstd", body_cap=1 << 20), matcher)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decompression-bomb" in result.stats.skipped
    assert peak < 32 << 20


def test_body_cap(matcher: Matcher) -> None:
    body = b"<html><body><p>" + b"filler " * 20000 + b"</p><p>kill myself</p></body></html>"
    result = scan_job(page_job(body, body_cap=50_000), matcher)
    assert result.findings == ()
    assert result.stats.skipped == ("body-cap",) and result.stats.bytes_scanned == 50_000
    assert scan_job(page_job(body), matcher).findings


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ((("Content-Type", "image/jpeg"),), b"\xff\xd8\xff kill myself", "binary-type"),
        ((("Content-Type", "application/javascript"),), b"var a = 'kill myself'", "code-type"),
        (
            (("Content-Type", "text/html"), ("Content-Encoding", "gzip")),
            b"not gzip kill myself",
            "bad-encoding",
        ),
        (
            (("Content-Type", "text/html"), ("Content-Encoding", "compress")),
            b"kill myself",
            "unknown-encoding",
        ),
        (
            (("Content-Type", "text/html"), ("Content-Encoding", "gzip")),
            gzip.compress(HTML)[:200],
            "truncated-encoding",
        ),
    ],
)
def test_skips_are_counted_never_raised(
    matcher: Matcher, headers: tuple[tuple[str, str], ...], body: bytes, reason: str
) -> None:
    job = ScanJob(
        context=ctx(),
        request_url="https://x.example/",
        response_status=200,
        response_headers=headers,
        response_body=body,
    )
    result = scan_job(job, matcher)
    assert reason in result.stats.skipped
    assert set(result.stats.skipped) <= ALL_REASONS


@pytest.mark.parametrize(("status", "method"), [(204, "GET"), (304, "GET"), (101, "GET"), (200, "HEAD")])
def test_responses_without_body(matcher: Matcher, status: int, method: str) -> None:
    job = ScanJob(
        context=ctx(),
        request_method=method,
        request_url="https://x.example/",
        response_status=status,
        response_headers=(("Content-Type", "text/html"),),
        response_body=b"kill myself",
    )
    assert scan_job(job, matcher).stats.skipped == ("no-body-status",)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=4000),
    content_type=st.sampled_from(
        [
            "text/html",
            "text/html; charset=shift_jis",
            "application/json",
            "text/plain",
            "text/event-stream",
            "multipart/form-data; boundary=x",
            "image/png",
            "",
            "a/b",
        ]
    ),
    encoding=st.sampled_from([None, "gzip", "br", "zstd", "deflate", "gzip, gzip", "bogus"]),
    ws=st.one_of(st.none(), st.binary(max_size=500), st.text(max_size=500)),
)
def test_fuzz_never_raises(
    matcher: Matcher, body: bytes, content_type: str, encoding: str | None, ws: bytes | str | None
) -> None:
    headers = (("Content-Type", content_type),) + ((("Content-Encoding", encoding),) if encoding else ())
    job = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://www.google.com/search?q=x",
        request_headers=headers,
        request_body=body,
        response_status=200,
        response_headers=headers,
        response_body=body,
        ws_message=ws,
    )
    result = scan_job(job, matcher)
    assert set(result.stats.skipped) <= ALL_REASONS
    check_offsets(result)


# ---------------------------------------------------------------------------------------------------
# Across a process boundary, and counters


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_job_and_result_pickle(matcher: Matcher, protocol: int) -> None:
    job = page_job(HTML * 20)
    assert len(job.response_body or b"") > 4096
    assert pickle.loads(pickle.dumps(job, protocol=protocol)) == job  # noqa: S301 - our own bytes
    result = scan_job(job, matcher)
    assert result.hits and result.snapshot
    assert pickle.loads(pickle.dumps(result, protocol=protocol)) == result  # noqa: S301
    assert copy.deepcopy(job) == job and copy.deepcopy(result) == result


def test_a_page_body_is_pickled_out_of_band_without_a_copy() -> None:
    job = page_job(HTML * 20)
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(job, protocol=5, buffer_callback=buffers.append)
    assert len(data) < 1000 and [b.raw().obj for b in buffers] == [job.response_body]
    back = pickle.loads(data, buffers=[bytes(b.raw()) for b in buffers])  # noqa: S301
    assert back == job and type(back.response_body) is bytes


def _worker_scan(job: ScanJob) -> ScanResult:
    return scan_job(job, _WORKER_MATCHER)


_WORKER_MATCHER: Matcher | None = None


def _init(library: str) -> None:
    global _WORKER_MATCHER
    _WORKER_MATCHER = Matcher.compile(load_library(Path(library)))


def test_scan_in_a_real_worker_process() -> None:
    with ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=(str(LIBRARY),)
    ) as pool:
        result = pool.submit(_worker_scan, page_job(brotli.compress(HTML), encoding="br")).result(timeout=120)
    assert "kill myself" in phrases(result)
    assert result.snapshot is not None


def test_count_stats(matcher: Matcher) -> None:
    counters.reset()
    count_stats(scan_job(page_job(HTML), matcher))
    count_stats(scan_job(page_job(b"\x89PNG", "image/png"), matcher))
    snap = counters.snapshot()
    assert snap["scan.jobs"] == 2 and snap["scan.skipped.binary-type"] == 1
    assert snap["scan.bytes"] == len(HTML) and snap["scan.hits"] >= 1


def test_for_http_takes_method_and_url_from_the_context(matcher: Matcher) -> None:
    context = FlowContext(
        time=0.0,
        client_ip="10.0.0.9",
        host="www.youtube.com",
        method="POST",
        url="https://www.youtube.com/results?search_query=self+harm",
    )
    job = ScanJob.for_http(
        context=context,
        request_headers=(("content-type", "application/json"),),
        request_body=b'{"query": "kms"}',
        response_status=200,
        response_headers=(("content-type", "text/html"),),
        response_body=b"",
        max_bytes=1000,
    )
    assert (job.request_method, job.request_url, job.body_cap) == ("POST", context.url, 1000)
    result = scan_job(job, matcher)
    assert {(f.source, f.label) for f in result.findings} == {("search", "youtube"), ("chat", "json")}


def test_for_websocket_text_and_binary(matcher: Matcher) -> None:
    text = ScanJob.for_websocket(context=ctx(), content=b"kms", is_text=True, from_client=False)
    assert text.ws_message == "kms" and text.ws_from_client is False
    assert phrases(scan_job(text, matcher)) == {"kms"}
    binary = ScanJob.for_websocket(context=ctx(), content=b"\x00\x01\x02\x03\x04", is_text=False)
    assert scan_job(binary, matcher).stats.skipped == ("binary-message",)


def test_json_sent_as_text_plain_is_chat(matcher: Matcher) -> None:
    job = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://chat.example/send",
        request_headers=(("Content-Type", "text/plain;charset=UTF-8"),),
        request_body=b'{"text": "gonna kms"}',
    )
    assert [(f.source, f.text) for f in scan_job(job, matcher).findings] == [("chat", "gonna kms")]
    plain = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://chat.example/send",
        request_headers=(("Content-Type", "text/plain"),),
        request_body=b"gonna kms",
    )
    assert [(f.source, f.label) for f in scan_job(plain, matcher).findings] == [("form", "body")]


@pytest.mark.timeout(60)
def test_deeply_nested_page_is_scanned_in_linear_time(matcher: Matcher) -> None:
    """400,000 unclosed <div>s would keep the HTML parser busy for hours; the crude path takes a moment."""
    body = b"<html><body>" + b"<div>" * 400_000 + b"<p>kill myself</p><script>suicide</script></body></html>"
    start = time.perf_counter()
    result = scan_job(page_job(gzip.compress(body), encoding="gzip"), matcher)
    assert time.perf_counter() - start < 20
    assert "kill myself" in phrases(result) and "suicide" not in phrases(result)
    assert "deep-html" in result.stats.skipped
    assert result.snapshot_type == "text/plain"


@pytest.mark.timeout(60)
def test_form_and_multipart_with_absurdly_many_fields(matcher: Matcher) -> None:
    form = b"&".join(b"f%d=x" % i for i in range(200_000)) + b"&last=kill+myself"
    job = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://x.example/",
        request_headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        request_body=form,
    )
    start = time.perf_counter()
    result = scan_job(job, matcher)
    assert time.perf_counter() - start < 10
    assert [f.label for f in result.findings] == ["(more fields)"]
    parts = b"--b\r\n" * 300_000 + b"--b--\r\n"
    job = ScanJob(
        context=ctx(),
        request_method="POST",
        request_url="https://x.example/",
        request_headers=(("Content-Type", "multipart/form-data; boundary=b"),),
        request_body=parts,
    )
    start = time.perf_counter()
    assert "too-many-parts" in scan_job(job, matcher).stats.skipped
    assert time.perf_counter() - start < 10


def test_every_skip_reason_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "proxy.md").read_text()
    missing = [reason for reason in sorted(ALL_REASONS) if f"`{reason}`" not in doc]
    assert not missing, f"docs/proxy.md: document these skip reasons: {missing}"


def test_sanitiser_svg_animation_cannot_set_a_script_url() -> None:
    out = sanitise_html(
        '<svg><a><animate attributeName="href" to="javascript:alert(1)"/>'
        '<set attributeName="href" values="javascript:alert(2)"/><text>t</text></a></svg>'
    )
    assert "javascript" not in out and "<svg" not in out and "<animate" not in out  # SVG is not kept


_HOSTILE = [
    "<script>alert(1)</script>",
    "<scr<script>ipt>alert(1)</script>",
    '<img src="https://x.example/a.png" srcset="https://x.example/b.png 2x" onerror="alert(1)" alt="pic">',
    '<a href="https://x.example/">link</a>',
    '<a href="javascript:alert(1)">js</a>',
    '<p style="background:url(https://x.example/t)">styled</p>',
    "<style>@import url(https://x.example/s.css)</style>",
    '<iframe src="https://x.example/"></iframe>',
    '<object data="https://x.example/o"></object><embed src="https://x.example/e">',
    '<form action="https://x.example/"><input name="q" value="v"><button formaction="https://x.example/">b</button></form>',
    '<link rel="stylesheet" href="https://x.example/s.css"><base href="https://x.example/">',
    '<meta http-equiv="refresh" content="0;url=https://x.example/">',
    '<svg onload="alert(1)"><image href="https://x.example/i"/></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<div onmouseover="alert(1)" data-src="https://x.example/d">div</div>',
    '<video poster="https://x.example/p"><source src="https://x.example/v"></video>',
    "<!--<img src=x onerror=alert(1)>-->",
    '<table background="https://x.example/t"><tr><td>cell</td></tr></table>',
]


@pytest.mark.parametrize("evil", _HOSTILE)
def test_snapshot_keeps_only_inert_markup(evil: str) -> None:
    out = sanitise_html(f"<html><head><title>t</title></head><body>{evil}<p>kept</p></body></html>")
    body = out.split("</head>", 1)[1].lower()
    assert "<p>kept</p>" in body or "<math" in evil  # an unclosed <math> swallows the rest: fine
    for bad in ("<script", "<style", "<iframe", "<object", "<embed", "<form", "<svg", "<math", "<link"):
        assert bad not in body, (evil, body)
    for bad in ("x.example", " on", "src=", "href=", "style=", "background=", "javascript:"):
        assert bad not in body, (evil, body)
    assert _active_attributes(out) == []


def test_snapshot_keeps_text_and_alt() -> None:
    out = sanitise_html('<p>Hello <b>there</b> <img src="https://x.example/a" alt="a photo"></p>')
    assert "<p>Hello <b>there</b>" in out and 'alt="a photo"' in out and "x.example" not in out


def test_hit_dense_text_keeps_the_most_severe_hits(matcher: Matcher) -> None:
    body = b"<p>" + b"kill " * 1000 + b"and then kms</p>"
    result = scan_job(page_job(body), matcher)
    (finding,) = result.findings
    assert len(finding.hits) == scanner.MAX_HITS
    assert "kms" in {h.phrase for h in finding.hits}  # severity 5 survives the cap
    assert [h.start for h in finding.hits] == sorted(h.start for h in finding.hits)
    assert "hit-cap" in result.stats.skipped


def test_topic_only_hits_keep_no_snapshot(tmp_path: Path) -> None:
    """Severity 1 is the topic alone: the hit is reported but no copy of the page is kept."""
    (tmp_path / "en").mkdir()
    (tmp_path / "categories.txt").write_text("drugs | Drugs | drugs\n")
    (tmp_path / "en" / "drugs.txt").write_text(
        "@category drugs\n@language en\ncannabis | 1\ndealer near me | 3\n"
    )
    topic = Matcher.compile(load_library(tmp_path))
    quiet = scan_job(page_job(b"<p>Cannabis policy in the UK</p>"), topic)
    assert [h.phrase for h in quiet.hits] == ["cannabis"] and quiet.snapshot is None
    concern = scan_job(page_job(b"<p>cannabis dealer near me</p>"), topic)
    assert concern.snapshot is not None


_ATTR_NAMES = ["src", "srcset", "onclick", "onerror", "href", "style", "action", "data-src", "alt", "title"]
_PIECES = [' src="', '"', "=", " ", "on", "onload=", "src", ">", "<", "&quot;", "é", "x", "\n", "'", "a"]


def _soup(pieces: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(_PIECES), max_size=pieces).map("".join)


def _active_attributes(html: str) -> list[tuple[str, str]]:
    from selectolax.lexbor import LexborHTMLParser

    from netmon.scan.snapshot import LOADING_ATTRS as _LOADING_ATTRS

    root = LexborHTMLParser(html).root
    return [
        (node.tag, name)
        for node in (root.traverse() if root is not None else ())
        for name in (node.attributes if node.tag not in ("-text", "meta") else {})  # meta: netmon's CSP
        if re.fullmatch(r"on[\w-]*", name) or name in _LOADING_ATTRS  # 'on"x' is no event handler
    ]


def test_sanitiser_attribute_values_that_look_like_attributes() -> None:
    html = '<img onerror="alert(1) src=" x="y"><a title="a src=" href="javascript:x" onclick="z">t</a>'
    assert _active_attributes(sanitise_html(html)) == []


@settings(max_examples=300, deadline=None)
@given(
    tags=st.lists(
        st.tuples(
            st.sampled_from(["img", "a", "div", "p", "svg", "form"]),
            st.lists(st.tuples(st.sampled_from(_ATTR_NAMES), _soup(6))),
            _soup(12),
        ),
        max_size=8,
    )
)
def test_sanitised_html_has_no_active_or_loading_attribute(
    tags: list[tuple[str, list[tuple[str, str]], str]],
) -> None:
    """Hostile markup: attribute values and text that look like attributes, quotes, entities."""
    html = "".join(
        f"<{tag} " + " ".join(f"{name}='{value}'" for name, value in attrs) + f">{text}</{tag}>{text}"
        for tag, attrs, text in tags
    )
    assert _active_attributes(sanitise_html(html)) == []
