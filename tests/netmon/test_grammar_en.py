"""The shipped English intent grammar (library/en/intent.grammar): the December 2026 shapes fire by rule,
and their look-alikes stay below alerting. Examples come from the dev sets, never from the held-out
tests/eval/fresh-2026-12b.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.scan.library import load_library
from netmon.scan.matching import Matcher

REPO = Path(__file__).resolve().parents[2]
CSE = "child_sexual_exploitation"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(REPO / "library"))


@pytest.mark.parametrize(
    ("text", "rule", "category", "severity"),
    [
        ("i pray every night that i dont wake up in the morning", "suicide.passive", "suicide", 4),
        ("what is even the point of me being alive", "suicide.pointless", "suicide", 4),
        ("i think my parents would cope fine without me in the picture", "suicide.burden", "suicide", 4),
        ("i feel like such a burden on my family", "suicide.burden.self", "suicide", 4),
        ("im so tired of living like this", "suicide.done", "suicide", 4),
        ("no one would even notice if i was gone tbh", "suicide.unmissed", "suicide", 4),
        ("ive started writing goodbye letters to my family", "suicide.final", "suicide", 4),
        ("i keep imagining throwing myself off the bridge near school", "suicide.jump", "suicide", 4),
        ("going to walk in front of a train after school today", "suicide.jump.soon", "suicide", 5),
        ("how high does a building have to be to die from the fall", "suicide.lethal", "suicide", 5),
        ("how many co-codamol would it take to not wake up", "suicide.dose.take", "suicide", 5),
        ("i'm going to swallow all of my mums pills when she's at work", "suicide.take_all", "suicide", 5),
        ("i keep getting urges to hurt myself", "self_harm.strong", "self_harm", 4),
        ("how do i stop my mum seeing the marks on my arms", "self_harm.hide.2", "self_harm", 4),
        ("how deep do you have to cut to need stitches", "self_harm.depth", "self_harm", 5),
        ("i relapsed and now there's blood on my sheets", "self_harm.relapse", "self_harm", 4),
        ("you don't deserve to be alive", "bullying.dead_wish", "bullying", 4),
        ("everyone in the class hates you, just leave", "bullying.shunned", "bullying", 4),
        ("i'm going to make sure everyone knows your secret", "bullying.expose", "bullying", 4),
        ("i'm going to make him suffer for what he did", "violence.suffer", "violence", 4),
        ("tomorrow i'm going to stab that boy at the bus stop", "violence.time_first", "violence", 5),
        ("best knife to hide in your waistband", "weapons.purpose", "weapons", 4),
        ("anyone got a nine for sale", "weapons.for_sale", "weapons", 4),
        ("this guy i met on tiktok is 22 and i'm 14, is that bad", "cse.age_gap", CSE, 4),
        ("a man gave me a lift and cigarettes and now says i owe him", "cse.gift_owe", CSE, 4),
        ("he keeps asking what i'm wearing to bed", "cse.probe", CSE, 4),
        ("he said if i really loved him i'd send a video", "cse.love_pressure", CSE, 4),
        ("he wants me to facetime him in bed", "cse.camera", CSE, 4),
        ("he wants me to tell my mum i'm sleeping at a friends", "cse.lie_parents", CSE, 4),
        ("he sent me a pic of his private parts and wants one back", "cse.sent_explicit.back", CSE, 5),
        ("refugees are parasites and should be wiped out", "hate.dehumanise", "hate_speech", 4),
        ("gas all the jews", "hate.kill_all", "hate_speech", 4),
    ],
)
def test_rule_fires_at_its_severity(
    matcher: Matcher, text: str, rule: str, category: str, severity: int
) -> None:
    hits = [h for h in matcher.scan(text) if h.phrase == f"rule {rule}"]
    assert hits, f"{rule} did not fire on {text!r}"
    assert hits[0].category == category
    assert hits[0].severity >= severity


@pytest.mark.parametrize(
    "text",
    [
        "my brother is 19 and im 13 so he always wins at fifa",
        "he's 30 and im 14, he's my football coach and he's great, mum knows him",
        "he said our secret santa has to stay secret",
        "i'd rather die than eat sprouts",
        "i'm sick of life admin, so many forms",
        "i wish i could sleep forever on sundays",
        "what height do you need for the rollercoaster",
        "how long does it take for a phone battery to die",
        "how many paracetamol can i take for a headache",
        "how deep do i cut the onion for caramelising",
        "it's my goodbye message as i'm leaving the school, thank you all",
        "i won't make it to christmas shopping this year",
        "the team would be better without me, im rubbish at defending",
        "a list of people i want to invite to my party",
        "i'm bringing a bat to cricket tomorrow",
        "i want to hurt my teacher's feelings less by handing in on time",
        "ww2 history: the nazis said jews were vermin, propaganda analysis",
        "he wants me to come to his party on saturday, my mum said yes",
        "i haven't self harmed in 100 days",
        "my friend keeps saying she wants to disappear forever, what do i do",
        "how to get a gun licence in the uk",
    ],
)
def test_look_alikes_stay_below_alerting(matcher: Matcher, text: str) -> None:
    loud = [(h.phrase, h.severity) for h in matcher.scan(text) if h.severity >= 3]
    assert not loud, f"{text!r} raised {loud}"


def test_explanation_names_the_new_rule_and_its_words(matcher: Matcher) -> None:
    (hit,) = [h for h in matcher.scan("he wants me to facetime him in bed") if h.phrase == "rule cse.camera"]
    why = " ".join(hit.rules)
    assert "ASKS 'wants me to'" in why and "CAMERA 'facetime'" in why and "SEXUAL_PLACE 'in bed'" in why
