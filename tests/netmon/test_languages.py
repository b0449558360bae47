"""The languages of issue 14 through the real library and matcher: each script's spelling variants are
caught at the phrase's category and severity, word boundaries hold in each script, help-seeking and
idioms stay quiet, and every new file says it is unreviewed by native speakers."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.scan import libeval
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher

LANGUAGES = ("ur", "pa", "ar", "bn", "so", "pt", "lt", "es")
CATEGORIES = ("suicide", "self_harm", "child_sexual_exploitation", "violence")


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_library(DEFAULT_LIBRARY_DIR))


def _top(matcher: Matcher, text: str, category: str) -> int:
    return max((h.severity for h in matcher.scan(text) if h.category == category), default=0)


CAUGHT = [
    # (language, how it is written, text, category, at least)
    ("ar", "with tashkeel", "أُرِيدُ أَنْ أَنْتَحِرَ", "suicide", 4),
    ("ar", "without tashkeel", "اريد ان انتحر", "suicide", 4),
    ("ar", "with tatweel", "ابغى انتحـــر خلاص", "suicide", 4),
    ("ar", "alef maksura as yeh", "ابغي انتحر", "suicide", 4),
    ("ar", "Arabizi", "wallah 3ayez amoot", "suicide", 4),
    ("ar", "teh marbuta typed as heh", "تعبت من الحياه", "suicide", 3),
    ("ur", "Urdu script", "میں مرنا چاہتا ہوں", "suicide", 4),
    ("ur", "Urdu typed with Arabic yeh, kaf and heh", "ميں خودكشي كرنا چاهتا هوں", "suicide", 4),
    ("ur", "Urdu with tashkeel", "مَیں مَرنا چاہتی ہُوں", "suicide", 4),
    ("ur", "Roman Urdu", "sach mein marna chahta hun", "suicide", 4),
    ("ur", "Roman Urdu as a hashtag", "#khudkushikarnachahta", "suicide", 4),
    ("pa", "Gurmukhi with nukta", "ਮੈਂ ਖ਼ੁਦਕੁਸ਼ੀ ਕਰ ਲੈਣੀ", "suicide", 4),
    ("pa", "Gurmukhi without nukta, bindi for tippi", "ਮੈਂ ਮਰਨਾ ਚਾਹੁਂਦਾ", "suicide", 4),
    ("pa", "Shahmukhi", "میں مرنا چاہندی آں", "suicide", 4),
    ("bn", "Bangla", "আমি আত্মহত্যা করতে চাই", "suicide", 4),
    ("bn", "Bangla with a decomposed ya-nukta and ZWJ", "আত্\u200dমহত্যা করব", "suicide", 4),
    ("bn", "romanised Bengali", "ami sotti morte chai", "suicide", 4),
    ("so", "Somali", "waxaan rabaa inaan is dilo", "suicide", 4),
    ("pt", "Portuguese without accents", "nao quero mais viver", "suicide", 4),
    ("lt", "Lithuanian without diacritics", "noriu nusizudyti", "suicide", 4),
    ("es", "Spanish, upper case", "ME QUIERO MORIR", "suicide", 4),
    ("ar", "Arabic self-harm", "جرحت نفسي امس", "self_harm", 4),
    ("es", "Spanish self-harm", "me corté los brazos otra vez", "self_harm", 4),
    (
        "ur",
        "Roman Urdu grooming: secrecy with pictures",
        "pics bhejo aur kisi ko mat batana",
        "child_sexual_exploitation",
        4,
    ),
    ("pt", "Portuguese grooming", "manda nudes vai", "child_sexual_exploitation", 4),
    ("bn", "Bengali threat", "আমি ওকে খুন করবো", "violence", 4),
    ("lt", "Lithuanian threat", "as ji uzmusiu", "violence", 4),
]


@pytest.mark.parametrize(
    ("lang", "how", "text", "category", "least"), CAUGHT, ids=[f"{c[0]}-{c[1]}" for c in CAUGHT]
)
def test_each_script_variant_is_caught(
    matcher: Matcher, lang: str, how: str, text: str, category: str, least: int
) -> None:
    assert _top(matcher, text, category) >= least, (
        lang,
        how,
        [(h.phrase, h.severity) for h in matcher.scan(text)],
    )


def test_the_hit_names_its_language_file_and_shows_the_typed_text(matcher: Matcher) -> None:
    text = "هو كتب: أُرِيدُ أَنْ أَنْتَحِرَ"
    hit = max(matcher.scan(text), key=lambda h: h.severity)
    assert (hit.language, hit.category, hit.severity) == ("ar", "suicide", 4)
    assert hit.library_file == "ar/suicide.txt"
    assert hit.matched_text.startswith("أُرِيدُ") and "تَحِر" in hit.matched_text


QUIET = [
    # (language, why, text): nothing at severity >= 3 (help-seeking, idiom, a longer word)
    ("ar", "prevention is help-seeking", "الوقاية من الانتحار"),
    ("ar", "a longer word is not the phrase: suicide bomber", "الانتحاري"),
    ("ar", "died laughing", "رحت فيها من الضحك"),
    ("bn", "murderer is a longer word than murder", "খুনি ধরা পড়েছে"),
    ("bn", "died laughing", "হেসে হেসে মরে গেলাম"),
    ("ur", "died of heat", "garmi se mar gaye yaar"),
    ("pa", "a kitchen knife", "ਰਸੋਈ ਵਾਲਾ ਚਾਕੂ"),
    ("so", "kitchen knife", "mindi cusub oo jikada"),
    ("pt", "I cut myself by accident", "me cortei sem querer fazendo salada"),
    ("es", "a haircut", "me corté el pelo ayer"),
    ("es", "prevention", "prevención del suicidio en adolescentes"),
    ("lt", "died laughing", "vos nenumiriau juokais"),
    ("en", "English words that look like romanised Urdu stay quiet", "the mar jana festival in goa"),
]


@pytest.mark.parametrize(("lang", "why", "text"), QUIET, ids=[f"{q[0]}-{q[1]}" for q in QUIET])
def test_help_seeking_idioms_and_longer_words_stay_quiet(
    matcher: Matcher, lang: str, why: str, text: str
) -> None:
    loud = [(h.phrase, h.severity) for h in matcher.scan(text) if h.severity >= 3]
    assert not loud, (lang, why, loud)


def test_secrecy_alone_is_not_grooming(matcher: Matcher) -> None:
    # a surprise party is kept secret too: secrecy counts only with pictures, money or meeting nearby
    for text in ("kisi ko mat batana, ammi ki surprise party hai", "no se lo digas a nadie, es una sorpresa"):
        assert _top(matcher, text, "child_sexual_exploitation") == 0, text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_has_the_four_categories_graded_and_marked_unreviewed(lang: str) -> None:
    library = load_library(DEFAULT_LIBRARY_DIR)
    counts = library.counts()
    for category in CATEGORIES:
        assert counts.get((category, lang), 0) >= 4, (lang, category)
        text = (DEFAULT_LIBRARY_DIR / lang / f"{category}.txt").read_text(encoding="utf-8")
        head = text.split("@category")[0].lower()
        assert "not a native speaker" in head and "unreviewed" in head, f"{lang}/{category}.txt"
    grades = {e.severity for e in library.entries if e.language == lang and e.category == "suicide"}
    assert 4 in grades and min(grades) < 4, (lang, grades)  # intent at 4, topic or hopelessness lower


# --- the held-out figures, held at the level measured (docs/library.md, "Languages beyond English") ---
EVAL = Path(__file__).resolve().parents[1] / "eval"
FLOORS = {
    # set: (recall at severity >= 4 over all languages, traps allowed to alarm); measured 2026-12-04
    "lang-2026-12.jsonl": (1.0, 0),  # 94/94, 33/33 quiet (same author as the phrase files: optimistic)
    "lang-2026-12b.jsonl": (0.33, 2),  # 18/53 (16/53 before the grammars), 14/16 quiet; never tune on it
    "lang-2026-12c.jsonl": (0.93, 0),  # ur/es/pt: 28/30 with the grammars (12/30 without), 9/9 quiet
}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_held_out_language_figures_hold(matcher: Matcher, name: str) -> None:
    corpus = libeval.load_corpus([EVAL / name])
    report = libeval.evaluate(matcher, corpus, min_severity=3)
    floor, trap_alarms = FLOORS[name]
    assert report.recall_high is not None and report.recall_high >= floor, (name, report.recall_high)
    assert report.trap_alarms <= trap_alarms, (name, [o.item.text for o in report.false_alarms])
    assert {r.lang for r in report.by_language} <= set(LANGUAGES)


GRAMMAR = [
    # (text, category, severity wanted, the rule that must fire or "" when nothing may reach 3)
    ("quiero de verdad suicidarme", "suicide", 4, "rule es.suicide.intent"),
    ("no quiero suicidarme", "suicide", 0, ""),  # negation cancels the rule and the phrase
    ("me quiero morir de risa jajaja", "suicide", 0, ""),  # an idiom lowers the rule, excepts the phrase
    ("tengo tantas ganas de cortarme", "self_harm", 4, "rule es.self_harm.intent"),
    ("me corto el pelo mañana", "self_harm", 0, ""),
    ("queria muito morrer", "suicide", 4, "rule pt.suicide.intent"),
    ("vou morrer de rir kkkk", "suicide", 0, ""),
    ("continuo me machucando", "self_harm", 4, "rule pt.self_harm.intent"),
    ("main sach mein marna hi chahti hun", "suicide", 4, "rule ur.suicide.wish"),
    ("میں اب مرنا ہی چاہتی ہوں", "suicide", 4, "rule ur.suicide.wish"),
    ("main marna nahi chahta", "suicide", 0, ""),  # negation between act and wish
    # graded 5 by the grave line for pictures with a grooming alert ("pics" is English in Roman Urdu)
    ("apni nangi pics bhejo", "child_sexual_exploitation", 5, "rule ur.cse.send"),
    ("apni nangi tasveer bhejo", "child_sexual_exploitation", 4, "rule ur.cse.send"),
]


@pytest.mark.parametrize(("text", "category", "severity", "rule"), GRAMMAR, ids=[g[0] for g in GRAMMAR])
def test_intent_grammars_of_urdu_spanish_portuguese(
    matcher: Matcher, text: str, category: str, severity: int, rule: str
) -> None:
    hits = matcher.scan(text)
    if rule:
        fired = [h for h in hits if h.phrase == rule]
        assert fired and fired[0].severity == severity and fired[0].category == category, hits
        assert fired[0].library_file.endswith("/intent.grammar")
    else:
        assert not [h for h in hits if h.severity >= 3], hits
