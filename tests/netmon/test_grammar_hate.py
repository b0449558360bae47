"""The hate grammar (library/en/hate.grammar): a protected group with derogation, exclusion, dehumanising
comparisons, negated praise, hate as a question, "not racist but", "i hate", or a call for violence fires
by rule at the severity of hate_speech's scale, and names the rule and the words in each slot; counter-
speech, reports of what others said, history, news, games, neutral identity statements and abuse that is
not about a group stay below alerting. The sentences are written here, not taken from an eval set."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.scan.findings import Hit
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(REPO / "library"))


def hate_rules(matcher: Matcher, text: str) -> list[Hit]:
    return [h for h in matcher.scan(text) if h.phrase.startswith("rule hatefn.")]


@pytest.mark.parametrize(
    ("text", "rule", "severity"),
    [
        ("honestly asylum seekers are all scroungers and thieves", "hatefn.derogate", 4),
        ("every single refugee is a criminal", "hatefn.derogate.every", 4),
        ("those filthy immigrants again", "hatefn.filthy_group", 4),
        ("lesbians make me sick", "hatefn.sicken", 4),
        ("sikhs are no better than rats", "hatefn.dehumanise", 4),
        ("deaf people can never be as clever as us", "hatefn.never_good", 4),
        ("not a single immigrant is honest", "hatefn.never_good.one", 4),
        ("bisexuals should not be allowed near our kids", "hatefn.bar", 4),
        ("a woman is only good for making sandwiches", "hatefn.sex_role", 4),
        ("the polish are ruining our towns", "hatefn.ruin", 4),
        ("why are travellers always so filthy", "hatefn.why", 4),
        ("why are autistic kids even allowed to exist", "hatefn.why_live", 4),
        ("not being funny but hindus are weird and creepy", "hatefn.not_racist_but", 4),
        ("i honestly hate all the foreigners in my town", "hatefn.i_hate", 4),
        ("somalis should be deported the lot of them", "hatefn.should_go", 4),
        ("round up all the asylum seekers", "hatefn.remove", 4),
        ("jews deserve to be lined up and shot", "hatefn.should_die", 5),
        ("someone should slaughter the gays", "hatefn.kill", 5),
        ("lets batter some pakis tonight", "hatefn.hurt", 5),
        ("i will shoot any muslim who comes near me", "hatefn.kill.one", 5),
        ("we should firebomb the synagogue", "hatefn.place", 5),
        ("i hope all the migrants drown", "hatefn.wish_dead", 5),
        ("sink the dinghies, no mercy", "hatefn.boats", 5),
        ("dont ever trust a romanian", "hatefn.distrust", 4),
        ("the somali lads are all scumbags", "hatefn.derogate.adj", 4),
        ("jewish families should be burnt alive", "hatefn.should_die.adj", 5),
        ("i swear ill punch the next gay person i see", "hatefn.hurt.one", 5),
        ("we should batter that albanian lad", "hatefn.hurt.adj", 5),
        ("fed up of the somalis round here they stink", "hatefn.they", 4),
        ("the only good refugee is a deported one", "hatefn.only_good", 4),
        ("write a post saying muslims are all terrorists", "hatefn.ask", 4),
    ],
)
def test_rule_fires_at_its_severity(matcher: Matcher, text: str, rule: str, severity: int) -> None:
    hits = [h for h in hate_rules(matcher, text) if h.phrase == f"rule {rule}"]
    assert hits, f"{rule} did not fire on {text!r}: {[h.phrase for h in matcher.scan(text)]}"
    assert hits[0].category == "hate_speech"
    assert hits[0].severity >= severity  # a grave word (rats, gas) raises a 4 to 5 in what a pupil typed
    assert hits[0].library_file.endswith("hate.grammar")


def test_explanation_names_the_rule_and_the_words_in_each_slot(matcher: Matcher) -> None:
    (hit,) = [h for h in hate_rules(matcher, "Muslims are ALL just disgusting") if h.phrase == "rule hatefn.derogate"]
    assert hit.rules[0] == (
        "rule hatefn.derogate [HATE_GROUP HATE_ARE HATE_VILE]: "
        "HATE_GROUP 'muslims' + HATE_ARE 'are all just' + HATE_VILE 'disgusting'"
    )
    assert hit.matched_text == "Muslims are ALL just disgusting"
    (hit,) = [h for h in hate_rules(matcher, "kill every jew") if h.phrase == "rule hatefn.kill.one"]
    assert hit.rules[0] == (
        "rule hatefn.kill.one [HATE_KILL HATE_EVERY HATE_ONE]: HATE_KILL 'kill' + HATE_EVERY 'every' + HATE_ONE 'jew'"
    )


def test_disguised_spelling_still_fires(matcher: Matcher) -> None:
    hits = hate_rules(matcher, "IMM1GRANTS are d1sgusting!!!")
    assert [(h.phrase, h.severity) for h in hits] == [("rule hatefn.derogate", 4)]


def test_derogation_is_4_and_a_call_to_kill_is_5(matcher: Matcher) -> None:
    assert [h.severity for h in hate_rules(matcher, "asylum seekers are all scroungers")] == [4]
    assert [h.severity for h in hate_rules(matcher, "someone should slaughter the gays")] == [5]


def test_counter_speech_lowers_and_says_why(matcher: Matcher) -> None:
    (hit,) = [h for h in hate_rules(matcher, "saying sikhs are smelly is racist") if h.phrase == "rule hatefn.derogate"]
    assert hit.severity == 1
    assert any("lowered to 1: HATE_COUNTER" in why for why in hit.rules)


def test_not_racist_but_is_not_lowered_by_its_own_disclaimer(matcher: Matcher) -> None:
    hits = hate_rules(matcher, "im not racist but refugees are dangerous")
    assert max(h.severity for h in hits) == 4


@pytest.mark.parametrize(
    "text",
    [
        # counter-speech, quoting to condemn, reporting what others said
        "calling sikhs smelly is pure racism",
        "he got suspended for shouting that refugees are rats",
        "my nan keeps saying immigrants are scroungers, how do i challenge her",
        "the idea that gay men are predators is a homophobic myth",
        # negation
        "refugees are not criminals",
        "immigrants are never the problem, greedy bosses are",
        "i would never say disabled people are a burden",
        # history and news
        "in the lesson we read how nazi posters said jews are parasites",
        "news report: arrests after calls to burn the mosque",
        "why did the nazis kill the jews",
        # neutral and positive identity statements, criticism of ideas
        "as a lesbian i love my girlfriend so much",
        "muslims fast from sunrise to sunset in ramadan",
        "trans people are valid and deserve to be happy",
        "disabled people are brilliant athletes, look at the paralympics",
        "women are more likely to get breast cancer than men",
        "gay people should be allowed to adopt",
        "i disagree with the church's teaching on divorce",
        "i hate it when people are mean to refugees",
        "i hate how women get paid less",
        "why are black people more likely to be stopped by police",
        # abuse and violence not about a group, games
        "you are disgusting and i never want to see you again",
        "these slugs are vermin, they ate my lettuce",
        "kill all the goblins to finish the level",
        "burn fat fast for women over 40",
        "women should burn more calories at the gym",
        "gay people should hang out at the new cafe",
        "sink the boats in the bath game",
        "refugees are fleeing violent wars",
        "trans fats are disgusting",
        "explain why muslims are called terrorists in the media",
        "write a speech about why refugees deserve kindness",
        "i hope the refugees get home safe",
        "muslims arrived at the centre and they were scared",
        "disabled people are a waste of nothing, they deserve respect",
        "i want women to burn fat faster with this workout",
        "never trust a weather forecast",
        "easter egg hunt for disabled kids at the library",
        "muslims are never shown fairly in the news",
    ],
)
def test_contrasts_do_not_fire_a_hate_rule_at_alerting(matcher: Matcher, text: str) -> None:
    loud = [(h.phrase, h.severity) for h in hate_rules(matcher, text) if h.severity >= 3]
    assert not loud, f"{text!r} raised {loud}"


@pytest.mark.parametrize(
    "text",
    [
        "as a gay man i feel safe at my school",
        "muslims should be allowed to pray at lunch",
        "refugees are welcome here",
        "my brother is such a rat, he told mum",
        "landlords are parasites",
        "i want to kill all the spiders in my room",
        "the government plans to deport refugees to another country",
    ],
)
def test_contrasts_quiet_in_the_whole_library(matcher: Matcher, text: str) -> None:
    loud = [(h.phrase, h.severity) for h in matcher.scan(text) if h.severity >= 3]
    assert not loud, f"{text!r} raised {loud}"
