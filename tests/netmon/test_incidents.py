"""Incident decisions from scan results: top hit, phrases, excerpt, explanation, dedup key, caps."""

from __future__ import annotations

import hashlib

import pytest

from netmon.incidents import decisions as incidents
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding


def hit_in(
    text: str,
    phrase: str,
    severity: int,
    category: str = "self_harm",
    *,
    nth: int = 0,
    line: int = 3,
    steps: tuple[str, ...] = (),
    rules: tuple[str, ...] = (),
) -> Hit:
    start = -1
    for _ in range(nth + 1):
        start = text.index(phrase, start + 1)
    return Hit(
        phrase=phrase,
        category=category,
        severity=severity,
        language="en",
        library_file=f"en/{category}.txt",
        line=line,
        start=start,
        end=start + len(phrase),
        matched_text=text[start : start + len(phrase)],
        steps=steps,
        rules=rules,
    )


CTX = FlowContext(
    time=1_790_000_000.5,
    client_ip="10.0.0.7",
    host="example.org",
    url="https://example.org/page?q=1",
    user="pupil1",
    groups=("year9",),
    site="north",
)


def result_of(text: str, *hits: Hit, source: str = "page", **kw: object) -> ScanResult:
    return ScanResult(
        context=kw.pop("context", CTX),  # type: ignore[arg-type]
        findings=(TextFinding(source=source, text=text, hits=hits),),
        **kw,
    )  # type: ignore[arg-type]


def test_top_hit_is_highest_severity_then_longest_phrase() -> None:
    text = "I want to kill myself, I cut myself, self harm"
    hits = (hit_in(text, "self harm", 2), hit_in(text, "cut myself", 4), hit_in(text, "kill myself", 4))
    draft = incidents.build(result_of(text, *hits))
    assert draft is not None
    row = draft.row()
    assert (row["phrase"], row["severity"], row["category"]) == ("kill myself", 4, "self_harm")
    assert [p["phrase"] for p in row["phrases"]] == ["kill myself", "cut myself", "self harm"]
    assert [e["line"] for e in row["explanation"]] == [3, 3, 3]
    assert row["count"] == 1 and row["time"] == row["last_seen"]
    assert row["time"].tzinfo is not None and row["time"].timestamp() == CTX.time


def test_excerpt_marks_original_text_and_joins_distant_matches() -> None:
    text = "S.u.i.c.i.d.e is mentioned here. " + "filler words " * 30 + "and k1ll myself at the end"
    hits = (
        Hit("suicide", "suicide", 4, "en", "en/suicide.txt", 1, 0, 13, "S.u.i.c.i.d.e", ("split-letters",)),
        hit_in(text, "k1ll myself", 5, category="suicide"),
    )
    draft = incidents.build(result_of(text, *hits))
    assert draft is not None
    ex = draft.values["excerpt"]
    pieces = ex.split(" … ")
    assert len(pieces) == 2
    assert pieces[0].startswith("[[k1ll myself]]") is False
    assert "[[k1ll myself]] at the end" in pieces[0]  # highest first
    assert pieces[1].startswith("[[S.u.i.c.i.d.e]] is mentioned here.")
    assert all(len(p) < 2 * incidents.EXCERPT_CONTEXT + 40 for p in pieces)


def test_excerpt_merges_close_matches_into_one_window() -> None:
    text = "pupils said they would cut myself and self harm tonight"
    draft = incidents.build(result_of(text, hit_in(text, "cut myself", 4), hit_in(text, "self harm", 2)))
    assert draft is not None
    assert draft.values["excerpt"] == "pupils said they would [[cut myself]] and [[self harm]] tonight"


def test_explanation_carries_file_line_steps_rules() -> None:
    text = "kill the pain"
    h = hit_in(
        text,
        "kill",
        2,
        category="violence",
        line=17,
        steps=("leetspeak",),
        rules=("exception 'kill the process' absent",),
    )
    draft = incidents.build(result_of(text, h, source="search"))
    assert draft is not None
    (why,) = draft.values["explanation"]
    assert why["library_file"] == "en/violence.txt" and why["line"] == 17
    assert why["steps"] == ["leetspeak"] and why["rules"] == ["exception 'kill the process' absent"]
    assert why["matched_text"] == "kill" and why["source"] == "search"
    assert draft.values["source"] == "search"


@pytest.mark.parametrize(("user", "who"), [("pupil1", "pupil1"), (None, "10.0.0.7")])
def test_dedup_key_is_user_or_address_url_top_phrase(user: str | None, who: str) -> None:
    ctx = FlowContext(time=0.0, client_ip="10.0.0.7", host="h", url="https://h/x", user=user)
    text = "kms"
    draft = incidents.build(result_of(text, hit_in(text, "kms", 5), context=ctx))
    assert draft is not None
    assert draft.dedup_key == hashlib.sha256(f"{who}|https://h/x|kms".encode()).hexdigest()


def test_hit_filter_drops_hits_and_whole_results() -> None:
    text = "self harm and kms"
    hits = (hit_in(text, "self harm", 2), hit_in(text, "kms", 5, category="suicide"))
    draft = incidents.build(result_of(text, *hits), hit_filter=lambda ctx, h: h.category != "suicide")
    assert draft is not None and draft.values["phrase"] == "self harm" and len(draft.values["phrases"]) == 1
    assert incidents.build(result_of(text, *hits), hit_filter=lambda ctx, h: False) is None
    assert incidents.build(result_of(text)) is None


def test_capture_and_snapshot_are_capped() -> None:
    text = "x " * 10_000 + "kms"
    res = result_of(text, hit_in(text, "kms", 5), snapshot=b"z" * 5000, snapshot_type="text/html")
    draft = incidents.build(res, capture_cap=1000, snapshot_cap=4000)
    assert draft is not None
    assert len(draft.values["capture_text"]) == 1000
    assert draft.values["snapshot"] is None and draft.values["snapshot_type"] is None
    draft = incidents.build(res, snapshot_cap=10_000)
    assert draft is not None and draft.values["snapshot"] == b"z" * 5000


def test_image_hit_without_text_has_empty_excerpt_and_keeps_evidence() -> None:
    h = Hit("image hash match", "child_sexual_exploitation", 5, "", "lists/iwf.txt", 9, 0, 0, "")
    res = ScanResult(
        context=CTX,
        findings=(TextFinding("image", "", (h,)),),
        evidence={"sha256": "ab" * 32, "bytes": 1234},
        snapshot=b"\xff\xd8 image bytes",
        snapshot_type="image/jpeg",
    )
    draft = incidents.build(res)
    assert draft is not None
    assert draft.values["excerpt"] == "" and draft.values["evidence"]["bytes"] == 1234
    assert draft.values["source"] == "image" and draft.values["capture_text"] == ""
    assert draft.values["snapshot"] is None  # never the image


def test_row_gives_fresh_uids() -> None:
    text = "kms"
    draft = incidents.build(result_of(text, hit_in(text, "kms", 5)))
    assert draft is not None
    assert draft.row()["uid"] != draft.row()["uid"] and len(draft.row()["uid"]) == 32
