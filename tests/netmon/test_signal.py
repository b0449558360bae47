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


def test_the_model_alone_alerts_on_a_pupils_words_that_no_phrase_holds(model: RiskModel) -> None:
    tiny = Matcher.compile(load_library(TINY))
    hits = _hits(scan_job(_search("send me a pic of you in your underwear"), tiny, model))
    assert len(hits) == 1 and hits[0].library_file == "model"
    assert hits[0].category == "child_sexual_exploitation" and hits[0].severity == 4
    assert "model alone: an alert" in hits[0].rules[0]
    assert not _hits(scan_job(_search("how do i revise for my maths gcse"), tiny, model))


def test_a_refusal_or_help_for_someone_else_is_only_for_review_on_the_models_word(model: RiskModel) -> None:
    tiny = Matcher.compile(load_library(TINY))
    for text in (
        "how do i support my mate whos sending pics in her underwear to some older guy",
        "i will never send pics in my underwear to older guys",
    ):
        hits = _hits(scan_job(_search(text), tiny, model))
        assert [(h.category, h.severity, h.library_file) for h in hits] == [
            ("child_sexual_exploitation", 2, "model")
        ]
        assert "keeps it from alerting" in hits[0].rules[0]


def test_a_pupil_asking_for_help_for_themselves_is_a_disclosure_and_alerts(model: RiskModel) -> None:
    tiny = Matcher.compile(load_library(TINY))
    text = "a man online keeps telling me to send pics in my underwear how do i get help"
    hits = _hits(scan_job(_search(text), tiny, model))
    assert [(h.category, h.severity) for h in hits] == [("child_sexual_exploitation", 4)]


def test_a_hit_of_another_family_does_not_hide_the_models_own(model: RiskModel) -> None:
    """A violence phrase in the text does not stop the model filing the grooming it reads there."""
    tiny = Matcher.compile(load_library(TINY))
    text = "delete these messages and send me a pic of u in ur underwear or i kill you"
    hits = _hits(scan_job(_search(text), tiny, model))
    assert {(h.category, h.library_file) for h in hits} >= {("violence", "en/violence.txt")}
    assert any(h.category == "child_sexual_exploitation" and h.library_file == "model" for h in hits)


def test_a_topic_hit_reaches_an_alert_where_the_model_alone_would_alert() -> None:
    """A text the model alone would alert on is not weaker for holding a topic word of that family."""
    from netmon.scan.signal import STRONG

    tiny = Matcher.compile(load_library(TINY))
    text = "i want to kill him"
    shipped = RiskModel.load()
    p = shipped.score(text)["violence_weapons"]
    alert = float(shipped.meta["alone_alert"])  # type: ignore[arg-type]
    assert alert <= p < STRONG, "pick a text between the model's alert score and STRONG for this model"
    hits = _hits(scan_job(_search(text), tiny, shipped))
    assert [(h.category, h.severity) for h in hits] == [("violence", 4)]
    assert any("(raised from 2)" in r for r in hits[0].rules)
    strict = RiskModel.load()
    strict.meta["alone_alert"] = 0.99  # a model whose own alert score is higher: one level only
    hits = _hits(scan_job(_search(text), tiny, strict))
    assert [(h.category, h.severity) for h in hits] == [("violence", 3)]


def test_windows_keep_every_sentence_of_a_long_post_in_short_runs() -> None:
    from netmon.scan.signal import MAX_WINDOWS, WINDOW, windows

    assert windows("short text") == ["short text"]
    post = "We had maths first and it was fine. " * 12 + "x" * 700 + " the end."
    parts = windows(post)
    assert parts[0] == post and all(len(p) <= WINDOW for p in parts[1:])
    assert "".join(parts[1:]).replace(" ", "") == post.replace(" ", "")  # nothing dropped
    assert len(windows("a. " * 5000)) == MAX_WINDOWS + 1


def test_a_risk_said_in_one_sentence_of_a_long_post_is_not_averaged_away(model: RiskModel) -> None:
    """The model alone, on a long form post that is mostly about something else."""
    from netmon.scan.signal import weigh

    risk = (
        "Honestly I cant do this anymore. Everyone would be better off if I just wasnt here. Ive thought "
        "about how I would do it and I think im ready. "
    )
    school = (
        "So today was a lot. We had a mock in science and I think it went ok, the electrolysis question "
        "was horrible though. Then at lunch the canteen ran out of pasta again and we had to get chips. "
        "My mum is picking up my brother from football later so I'm getting the bus home on my own. "
    )
    for post, alerts in ((school * 2, False), (school + risk + school, True)):
        found = weigh(model, [("form", "post", post)], [])
        top = max(
            (h.severity for f in found for h in f.hits if h.category in ("suicide", "self_harm")), default=0
        )
        assert (top >= 4) is alerts, (post[-80:], found)
