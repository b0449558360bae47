"""netmon.scan.signal: the shipped risk model weighs the library's hits on what a pupil typed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote_plus

import pytest

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.scan.findings import FlowContext
from netmon.scan.job import ScanJob, scan_job
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher
from netmon.scan.model import RiskModel

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "scan-library"


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return RiskModel.load()


@pytest.fixture(scope="module")
def library() -> Matcher:
    return Matcher.compile(load_library(DEFAULT_LIBRARY_DIR))


def _search(q: str) -> ScanJob:
    url = "https://www.google.com/search?q=" + quote_plus(q)
    return ScanJob.for_http(context=FlowContext(time=0, client_ip="10.0.0.1", host="www.google.com", url=url))


def _page(text: str) -> ScanJob:
    ctx = FlowContext(time=0, client_ip="10.0.0.1", host="example.org", url="https://example.org/")
    body = f"<html><body><p>{text}</p></body></html>".encode()
    return ScanJob.for_http(
        context=ctx,
        response_status=200,
        response_headers=(("content-type", "text/html"),),
        response_body=body,
    )


def _hits(result) -> list:  # type: ignore[no-untyped-def]
    return [h for f in result.findings for h in f.hits]


def test_a_topic_hit_in_a_pupils_words_is_raised_and_explained(library: Matcher, model: RiskModel) -> None:
    plain = _hits(scan_job(_search("nobody would care about my suicide"), library))
    weighed = _hits(scan_job(_search("nobody would care about my suicide"), library, model))
    assert plain and weighed and plain[0].category == weighed[0].category == "suicide"
    assert weighed[0].severity > plain[0].severity
    assert any(r.startswith("model: suicide/self-harm risk") for r in weighed[0].rules)


def test_negation_is_never_raised_on_the_models_word(library: Matcher, model: RiskModel) -> None:
    plain = _hits(scan_job(_search("i would never hurt myself"), library))
    weighed = _hits(scan_job(_search("i would never hurt myself"), library, model))
    assert [h.severity for h in weighed] == [h.severity for h in plain]
    assert any("model:" in r for h in weighed for r in h.rules), "the score is still shown"


def test_pages_are_never_scored(library: Matcher, model: RiskModel) -> None:
    text = "nobody would care about my suicide"
    plain = _hits(scan_job(_page(text), library))
    weighed = _hits(scan_job(_page(text), library, model))
    assert weighed == plain and not any("model:" in r for h in weighed for r in h.rules)


def test_the_model_alone_is_a_low_severity_finding_for_review(model: RiskModel) -> None:
    tiny = Matcher.compile(load_library(TINY))
    result = scan_job(_search("send me a pic of you in your underwear"), tiny, model)
    hits = _hits(result)
    assert len(hits) == 1 and hits[0].library_file == "model"
    assert hits[0].category == "child_sexual_exploitation" and hits[0].severity == 2
    assert "never an alert" in hits[0].rules[0]
    assert not _hits(scan_job(_search("how do i revise for my maths gcse"), tiny, model))
