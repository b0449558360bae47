"""netmon.scan.extract: the text a person sees or types, per content type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netmon.scan.extract import (
    REASONS,
    crude_html_text,
    decode_body,
    extract_body,
    extract_text,
    form_fields,
    html_text,
    join,
    kind_of,
    message_text,
    multipart_fields,
    token_of,
)

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "pages"


@pytest.mark.parametrize(
    ("content_type", "data", "kind"),
    [
        ("text/html; charset=utf-8", b"<p>x</p>", "html"),
        ("application/xhtml+xml", b"<html/>", "html"),
        ("application/json", b"{}", "json"),
        ("application/vnd.api+json", b"{}", "json"),
        ("application/x-ndjson", b"{}\n{}", "ndjson"),
        ("text/event-stream", b"data: x\n\n", "sse"),
        ("text/plain", b"hello", "text"),
        ("text/markdown", b"# hello", "text"),
        ("application/x-www-form-urlencoded", b"a=b", "form"),
        ("multipart/form-data; boundary=x", b"--x", "multipart"),
        ("application/rss+xml", b"<rss/>", "xml"),
        ("image/png", b"\x89PNG", "binary"),
        ("video/mp4", b"", "binary"),
        ("font/woff2", b"wOF2", "binary"),
        ("application/octet-stream", b"\x00\x01", "binary"),
        ("application/pdf", b"%PDF", "binary"),
        ("text/css", b"p{}", "code"),
        ("application/javascript", b"var a", "code"),
        ("text/html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),  # lying server
        (None, b"<!DOCTYPE html><p>x</p>", "html"),
        (None, b'{"a": 1}', "json"),
        (None, b"just words", "text"),
        (None, b"\x00\x01\x02\x03\x04binary", "binary"),
        ("application/x-unknown", b"<html><body>x", "html"),
        # a label that would hide text is not taken at its word (a page's script can show the text)
        ("image/png", b"<!DOCTYPE html><html><body><p>kys</p>", "html"),
        ("image/jpeg", b"i want to kill myself and nobody would even notice that i was gone at all", "text"),
        ("font/woff2", b'{"message": "meet me after school, do not tell your mum"}', "json"),
        ("application/octet-stream", b"<?xml version='1.0'?><rss><item>x</item></rss>", "xml"),
        ("text/css", b"<html><body><p>hidden in a style sheet</p>", "html"),
        ("application/javascript", b"var message = 'words in a script are code, not a page'; f(message);", "code"),
        ("image/gif", b"GIF89a" + b"x" * 100, "binary"),  # a file signature: what it says it is
        ("image/png", b"short text", "binary"),  # too little to tell: the label stands
    ],
)
def test_kind_of(content_type: str | None, data: bytes, kind: str) -> None:
    assert kind_of(content_type, data) == kind


# ---------------------------------------------------------------------------------------------------
# HTML

PAGE = b"""<!DOCTYPE html><html><head><title>My &amp; title</title>
<style>.kill { color: red }</style><script>var secret = "script text";</script></head>
<body onload="x()"><nav><ul><li>Home</li><li>News</li></ul></nav>
<p>First paragraph with <b>bold</b> words &eacute;t&eacute;.</p><p>Second</p>
<template><p>template text</p></template><noscript>noscript text</noscript><!-- comment text -->
<img src="a.png" alt="A picture of a cat"><input name="q" value="typed words" placeholder="Search here">
<input type="hidden" name="h" value="hidden value"><input type="password" name="pw" value="hunter2">
<textarea placeholder="Write a message">area text</textarea><select><option>Option text</option></select>
</body></html>"""


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>su<b>ic</b>ide</p>", "suicide"),
        ("<p>k<i>i</i>ll m<em>y</em>s<strong>e</strong>lf</p>", "kill myself"),
        ('<p><span class="x">s</span><a href="#">u</a><u>i</u><s>c</s><small>i</small>de</p>', "suicide"),
        ("<p>s<mark>u</mark>i<sub>c</sub>i<sup>d</sup><font color=red>e</font></p>", "suicide"),
        ("<p>s<b>u<i>i</i>c</b>ide</p>", "suicide"),  # nested inline elements
        ("<P>SU<B>IC</B>IDE</P>", "SUICIDE"),
        ("<p>one</p><p>two</p>", "one\ntwo"),  # block elements: a line each
        ("<div>one<div>two</div></div>", "one\ntwo"),
        ("<p>one<br>two</p>", "one\ntwo"),
        ("<li>one</li><li>two</li>", "one\ntwo"),
        ("<p>read <a href=x>this</a> now</p>", "read this now"),
    ],
)
def test_inline_elements_run_on_block_elements_do_not(html: str, text: str) -> None:
    assert html_text(html).text == text
    # the linear fallback for pages nested too deep reads inline and block elements the same way
    assert " ".join(crude_html_text(html).text.split()) == " ".join(text.split())
    assert [w for w in crude_html_text(html).text.split("\n") if w.strip()] == text.split("\n")


def test_rss_description_inline_markup_runs_on() -> None:
    rss = b"<rss><channel><item><description><![CDATA[<p>su<b>ic</b>ide</p><p>next</p>]]></description>"
    e = extract_body(rss + b"</item></channel></rss>", "application/rss+xml")
    assert "suicide\nnext" in e.text


def test_html_visible_text_only() -> None:
    e = extract_body(PAGE, "text/html; charset=utf-8")
    for seen in (
        "My & title",
        "First paragraph with",
        "bold",
        "words \u00e9t\u00e9.",
        "Second",
        "Home",
        "A picture of a cat",
        "typed words",
        "Search here",
        "Write a message",
        "area text",
        "Option text",
    ):
        assert seen in e.text, seen
    for unseen in (
        "script text",
        ".kill",
        "template text",
        "noscript text",
        "comment text",
        "hidden value",
        "hunter2",
        "<p>",
        "onload",
        "a.png",
    ):
        assert unseen not in e.text, unseen


def test_html_segments_and_labels() -> None:
    e = html_text(PAGE.decode())
    assert e.label_at(e.text.index("My & title")) == "title"
    assert e.label_at(e.text.index("Second")) == "body"
    assert e.label_at(e.text.index("A picture")) == "alt"
    assert e.label_at(e.text.index("typed words")) == "input"
    assert e.label_at(e.text.index("Search here")) == "placeholder"
    for label, text in e.segments():
        assert text and label


def test_html_blocks_are_separated() -> None:
    """Minified pages: adjacent blocks must not run into one word ("Homekms")."""
    e = extract_body(b"<ul><li>Home</li><li>kms</li></ul><div>end</div><p>x</p>", "text/html")
    assert "Homekms" not in e.text
    assert "kms" in e.text.split()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("windows-1252.html", "I want to kill myself \u2013 \u201cplease\u201d help"),
        ("latin1-http-equiv.html", "self harm \u2019s \u20ac5"),
        ("windows-1252-undeclared.html", "caf\u00e9t\u00e9ria"),
        ("utf-16le-bom.html", "I feel like self harm again"),
        ("utf-16be-bom.html", "kms tonight"),
        ("utf-8-bom.html", "\u81ea\u6bba suicide \u00fcber"),
        ("shift_jis.html", "\u79c1\u306f\u6b7b\u306b\u305f\u3044\u3002"),
        ("shift_jis-undeclared.html", "\u60b2\u3057\u3044"),
        ("unknown-charset.html", "\u00e9l\u00e8ve kill myself"),
        ("invalid-utf8.html", "kill myself"),
    ],
)
def test_html_pages_in_many_charsets(name: str, expected: str) -> None:
    e = extract_body((PAGES / name).read_bytes(), "text/html")
    assert expected in e.text
    assert "var hidden" not in e.text and "color: red" not in e.text


def test_xhtml_with_xml_declaration() -> None:
    e = extract_body((PAGES / "koi8-r.xhtml").read_bytes(), "application/xhtml+xml")
    assert "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440. self harm" in e.text


def test_rss_with_cdata() -> None:
    rss = (
        b"<?xml version='1.0'?><rss><channel><item><title>Headline</title>"
        b"<description><![CDATA[<p>Body <b>text</b></p>]]></description></item></channel></rss>"
    )
    e = extract_body(rss, "application/rss+xml")
    assert "Headline" in e.text and "Body" in e.text and "<p>" not in e.text


# ---------------------------------------------------------------------------------------------------
# JSON


def test_json_string_values_recursively() -> None:
    doc = {
        "model": "gpt-x",
        "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel sad"}],
        "n": 1,
        "nested": {"deeper": [[{"text": "deep words"}]]},
        "password": "hunter2",
        "access_token": "abc",
        "url": "https://example.com/a?b=c",
        "blob": "A" * 500,
    }
    e = extract_body(json.dumps(doc).encode(), "application/json")
    for seen in ("Be kind.", "I feel sad", "deep words"):
        assert seen in e.text
    for unseen in ("hunter2", "abc", "https://", "AAAA", "messages"):
        assert unseen not in e.text
    assert e.label_at(e.text.index("I feel sad")) == "content"


def test_json_unicode_escapes_and_xssi_prefix() -> None:
    e = extract_body(b')]}\'\n{"a": "caf\\u00e9 \\ud83d\\ude00"}', "application/json")
    assert e.text == "caf\u00e9 \U0001f600"


def test_truncated_json_still_yields_strings() -> None:
    e = extract_body(b'{"a": ["one two", "three"], "b": "cut in the mid', "application/json")
    assert e.text.split("\n") == ["one two", "three", "cut in the mid"]
    assert e.skipped == ("bad-json",)


def test_deeply_nested_json_does_not_raise() -> None:
    e = extract_body(b"[" * 100_000 + b'"deep"' + b"]" * 100_000, "application/json")
    assert "deep" in e.text


def test_ndjson_ollama_stream_is_joined() -> None:
    lines = [
        {"model": "llama", "message": {"role": "assistant", "content": t}, "done": False}
        for t in ("I ", "can ", "help.")
    ]
    body = "\n".join(json.dumps(x) for x in lines).encode()
    assert extract_body(body, "application/x-ndjson").text == "I can help."


# ---------------------------------------------------------------------------------------------------
# Server-sent events: AI chat streams


def _sse(*events: object, done: bool = True) -> bytes:
    out = "".join(f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n" for e in events)
    return (out + ("data: [DONE]\n\n" if done else "")).encode()


def test_openai_chat_stream() -> None:
    body = _sse(
        {"choices": [{"delta": {"role": "assistant"}}]},
        *(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": t}}],
            }
            for t in ("You ", "could ", "kill", " myself")
        ),
    )
    e = extract_body(body, "text/event-stream; charset=utf-8")
    assert e.text == "You could kill myself"
    assert e.label_at(0) == "answer"


def test_anthropic_stream() -> None:
    body = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"claude"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Please "}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"talk to someone"}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert extract_body(body, "text/event-stream").text == "Please talk to someone"


def test_openai_responses_and_gemini_streams() -> None:
    responses = _sse(
        {"type": "response.output_text.delta", "delta": "self "},
        {"type": "response.output_text.delta", "delta": "harm"},
        done=False,
    )
    assert extract_body(responses, "text/event-stream").text == "self harm"
    gemini = _sse(
        {"candidates": [{"content": {"parts": [{"text": "Hello "}], "role": "model"}}]},
        {"candidates": [{"content": {"parts": [{"text": "there"}], "role": "model"}}]},
        done=False,
    )
    assert extract_body(gemini, "text/event-stream").text == "Hello there"


def test_chatgpt_web_patch_stream_and_cumulative_stream() -> None:
    patch = _sse(
        {"p": "/message/content/parts/0", "o": "append", "v": "I am "},
        {"v": "here "},
        {
            "o": "patch",
            "v": [
                {"p": "/message/content/parts/0", "o": "append", "v": "for you"},
                {"p": "/message/status", "o": "replace", "v": "finished"},
            ],
        },
    )
    assert extract_body(patch, "text/event-stream").text == "I am here for you"
    cumulative = _sse(
        *(
            {"message": {"content": {"parts": [t]}}}
            for t in ("Hello", "Hello there, ", "Hello there, how are you?")
        )
    )
    assert extract_body(cumulative, "text/event-stream").text == "Hello there, how are you?"


def test_plain_sse_and_multiline_data() -> None:
    body = (
        b'event: note\ndata: first line\ndata: second line\n\n: a comment\n\ndata: {"msg": "json note"}\n\n'
    )
    e = extract_body(body, "text/event-stream")
    assert "first line\nsecond line" in e.text and "json note" in e.text


def test_token_of_ignores_non_tokens() -> None:
    assert token_of({"type": "ping"}) is None
    assert token_of(["not", "a", "dict"]) is None
    assert token_of({"choices": [{"delta": {}, "finish_reason": "stop"}]}) == ""


def test_vercel_ai_sdk_text_stream() -> None:
    body = b'f:{"messageId":"m"}\n0:"Hel"\n0:"lo "\n0:"you"\ne:{"finishReason":"stop"}\n'
    assert (
        extract_body(b"0:" + body[body.index(b"0:") + 2 :], "text/plain; charset=utf-8").text == "Hello you"
    )


# ---------------------------------------------------------------------------------------------------
# Request bodies


def test_form_fields_skip_credentials_and_tokens() -> None:
    fields = form_fields(
        "q=how+to+self+harm&message=I%27m+sad&password=hunter2&csrf_token=abc&empty=&__VIEWSTATE=" + "x" * 300
    )
    assert fields == [("q", "how to self harm"), ("message", "I'm sad")]


def test_form_body() -> None:
    e = extract_body(b"comment=kill+myself&x=%E2%9C%93", "application/x-www-form-urlencoded")
    assert e.text == "kill myself\n\u2713"
    assert e.labels == ("comment", "x")


MULTIPART = (
    b'--BOUNDARY\r\nContent-Disposition: form-data; name="comment"\r\n\r\nI want to kill myself\r\n'
    b'--BOUNDARY\r\nContent-Disposition: form-data; name="photo"; filename="cat.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01 kill myself in a file\r\n"
    b'--BOUNDARY\r\nContent-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n'
    b'{"caption": "night out"}\r\n'
    b'--BOUNDARY\r\nContent-Disposition: form-data; name="password"\r\n\r\nhunter2\r\n'
    b"--BOUNDARY--\r\n"
)


def test_multipart_text_fields_only() -> None:
    fields, skipped = multipart_fields(MULTIPART, 'multipart/form-data; boundary="BOUNDARY"')
    assert fields == [("comment", "I want to kill myself"), ("meta.caption", "night out")]
    assert skipped == ["multipart-file"]
    e = extract_body(MULTIPART, "multipart/form-data; boundary=BOUNDARY")
    assert "in a file" not in e.text and "hunter2" not in e.text
    assert e.skipped == ("multipart-file",)


def test_multipart_without_boundary() -> None:
    assert extract_body(b"junk", "multipart/form-data").skipped == ("unsupported-type",)


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        ("image/png", "binary-type"),
        ("application/octet-stream", "binary-type"),
        ("text/css", "code-type"),
        ("multipart/mixed; boundary=x", "unsupported-type"),
    ],
)
def test_skipped_types(content_type: str, reason: str) -> None:
    e = extract_body(b"\x89PNG\r\n\x1a\n\x00\x00kill myself", content_type)
    assert e.text == "" and e.skipped == (reason,)


# ---------------------------------------------------------------------------------------------------
# WebSocket messages and joining


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ('{"type":"chat","text":"meet me after school"}', "chat\nmeet me after school"),
        ('42["message",{"body":"hello there"}]', "message\nhello there"),
        ("plain words", "plain words"),
        ("{broken json", "{broken json"),
    ],
)
def test_websocket_messages(message: str, text: str) -> None:
    assert message_text(message).text == text


def test_join_keeps_offsets_meaningful() -> None:
    e = join([("a", "first"), ("b", ""), ("c", "second part"), ("d", "  ")])
    assert e.text == "first\nsecond part"
    assert e.starts == (0, 6)
    assert e.label_at(7) == "c" and e.label_at(0) == "a"
    assert list(e.segments()) == [("a", "first"), ("c", "second part")]


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=3000),
    content_type=st.sampled_from(
        [
            "text/html",
            "application/json",
            "text/event-stream",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=a",
            "application/x-ndjson",
            "application/rss+xml",
            None,
        ]
    ),
)
def test_any_bytes_extract_without_raising(body: bytes, content_type: str | None) -> None:
    e = extract_body(body, content_type)
    assert isinstance(e.text, str)
    assert set(e.skipped) <= set(REASONS)


def test_form_in_the_charset_of_its_page() -> None:
    e = extract_body(b"msg=caf%E9+%96+kill", "application/x-www-form-urlencoded; charset=windows-1252")
    assert e.text == "caf\u00e9 \u2013 kill"
    assert (
        extract_body("msg=\u00e9t\u00e9".encode(), "application/x-www-form-urlencoded").text
        == "\u00e9t\u00e9"
    )


@pytest.mark.parametrize(
    ("content", "kind_or_type", "expected"),
    [
        ("<p>hello <b>there</b></p><script>no</script>", "html", "hello"),
        ("<p>hello</p>", "text/html; charset=utf-8", "hello"),
        (b"<p>caf\xe9</p>", "text/html; charset=windows-1252", "caf\u00e9"),
        ('{"a": "json words"}', "json", "json words"),
        ('{"a": "json words"}', "application/json", "json words"),
        ('data: {"choices":[{"delta":{"content":"tok"}}]}\n\n', "text/event-stream", "tok"),
        ("q=form+words", "form", "form words"),
        ("plain words", None, "plain words"),
        ("<!DOCTYPE html><p>sniffed</p>", None, "sniffed"),
    ],
)
def test_extract_text_takes_a_kind_or_a_content_type(
    content: str | bytes, kind_or_type: str | None, expected: str
) -> None:
    e = extract_text(content, kind_or_type)
    assert expected in e and expected in str(e)
    assert "<" not in e.text and "no" not in e.text.split()


def test_decode_body() -> None:
    import gzip

    body = decode_body(
        gzip.compress("<p>caf\u00e9</p>".encode("cp1252")), "gzip", "text/html; charset=cp1252"
    )
    assert body.text == "<p>caf\u00e9</p>" and body.charset == "cp1252" and body.skipped == ()
    capped = decode_body(b"x" * 100, None, "text/plain", cap=10)
    assert capped.text == "x" * 10 and capped.skipped == ("body-cap",)
    assert decode_body(b"junk", "br", "text/html").skipped == ("bad-encoding",)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "body",
    [
        b"<div>" * 200_000 + b"<" * 500_000,
        b"<div>" * 200_000 + b"<script>" * 100_000,
        b"<div>" * 200_000 + b"<!--" * 200_000,
        b"<div>" * 200_000 + b"<p>ok</p><script>x</script>tail",
    ],
)
def test_crude_path_is_linear(body: bytes) -> None:
    import time

    start = time.perf_counter()
    e = extract_body(body, "text/html")
    assert time.perf_counter() - start < 10
    assert e.skipped == ("deep-html",)
    assert "x" not in e.text.split()


def test_utf16_declared_in_the_header_without_bom() -> None:
    body = "<p>self harm</p>".encode("utf-16-le")
    assert "self harm" in extract_body(body, "text/html; charset=utf-16le").text
    assert "kms" in extract_body("<p>kms</p>".encode("utf-16-be"), "text/html; charset=UTF-16BE").text
