"""The learned second signal, applied to what a pupil typed (docs/model-card.md).

:func:`weigh` runs the shipped :class:`~netmon.scan.model.RiskModel` over the short pupil-typed texts of
one scan (search queries, form fields, chat and AI prompts, messages a device sent over a WebSocket) and
adjusts the library's hits where the model's measured precision supports it:

- a library or grammar hit of a category the model covers gets the model's score in its explanation
  (``model: suicide/self-harm risk 0.93``), which also ranks the DSL's queue;
- with a score >= ``RAISE`` such a hit is raised one level (to at most 4), and with a score >= ``STRONG``
  (or the model's own alert score, if lower: a text the model alone would alert on is not weaker for
  holding a topic word) to at least 4: the library saw the topic and the model says the pupil's own
  words carry the risk
  (precision 0.92-1.00 at 0.5 on the held-out and dev splits, 1.7 benign page sentences per 1,000);
- the model alone (no hit of that family in the text) makes a finding of its own: at or above its alert
  score at severity 4, an alert, because pupils' own words carry risk in wording no list holds; at or
  above its review score at severity 2, for review. Both scores were chosen when the model was trained,
  as those that only 5% and 10% of benign look-alikes held apart from training reach, and are kept in
  the model file (``ALONE_ALERT`` and ``ALONE`` are the fallbacks). A text in which the pupil refuses
  ("i would never...") or seeks help for someone else ("how do i help my friend who...") is never an
  alert on the model's word alone; asking for help for oneself is a disclosure and still alerts;
- it never lowers a severity, and never raises a hit with a negation in the few words before it
  ("i would never hurt myself"): negation and help-seeking are the grammar's to judge.

Page bodies are never scored. The model was trained on short texts, so a longer post is also scored a
few sentences at a time (windows of at most ``WINDOW`` characters, at most ``MAX_WINDOWS`` of them) and
each category keeps its highest score: a risk said in one sentence of a long post about school is not
averaged away. Texts longer than ``MAX_CHARS`` are not scored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Protocol

from netmon.scan.findings import Hit, TextFinding

log = logging.getLogger(__name__)

#: Library categories each model category speaks for.
FAMILIES: dict[str, tuple[str, ...]] = {
    "suicide_self_harm": ("suicide", "self_harm"),
    "bullying_hate": ("bullying", "hate_speech", "discrimination"),
    "sexual_exploitation": ("child_sexual_exploitation", "intimate_image_abuse"),
    "violence_weapons": ("violence", "weapons", "extremism"),
}
#: The category a model-only finding is filed under.
PRIMARY = {
    "suicide_self_harm": "suicide",
    "bullying_hate": "bullying",
    "sexual_exploitation": "child_sexual_exploitation",
    "violence_weapons": "violence",
}
LABELS = {
    "suicide_self_harm": "suicide/self-harm",
    "bullying_hate": "bullying/hate",
    "sexual_exploitation": "sexual exploitation",
    "violence_weapons": "violence/weapons",
}
SOURCES = frozenset({"search", "form", "chat", "websocket"})
MAX_CHARS = 4000
WINDOW = 300
MAX_WINDOWS = 16
_SENTENCE = re.compile(r"(?<=[.!?\n])\s+")
NOTE, RAISE, STRONG = 0.3, 0.5, 0.8
ALONE, ALONE_ALERT = 0.4, 0.5
#: The model cannot read negation: a hit with one of these in the few words before it is never raised.
_NEGATION = re.compile(
    r"\b(?:never|not|no|don'?t|dont|won'?t|wouldn'?t|would not|can'?t|cannot|isn'?t|nobody)\b"
)
#: What keeps a model-only finding for review: a pupil refusing ("i would never..."), helping someone
#: else, or learning about it. Narrower than ``_NEGATION`` on purpose: "nobody would care", "i can't go
#: on" and "don't tell your mum" carry the risk, and a pupil asking for help for themselves ("how do
#: i get help") is a disclosure the DSL must see.
_REFUSAL = re.compile(
    r"\b(?:never|wouldn'?t|would not|won'?t|will not|not going to|"
    r"(?:don'?t|do not) (?:want|plan|intend) to)\b"
)
_HELP = re.compile(
    r"\b(?:(?:help(?:ing)?|support(?:ing)?) (?:my|a|her|him|them|someone|somebody|friends?)\b|helpline|"
    r"prevent(?:ion|ing)?\b|awareness|worried about (?:my|a) (?:friend|mate)|"
    r"my (?:friend|mate|sister|brother|cousin)(?:'?s)? (?:who|whos|keeps|is|has|said))"
)
ALONE_SEVERITY, ALONE_ALERT_SEVERITY = 2, 4


class Scores(Protocol):
    categories: tuple[str, ...]
    meta: dict[str, object]

    def score_batch(self, texts: list[str]) -> object: ...


def typed_by_pupil(source: str, label: str) -> bool:
    if source not in SOURCES:
        return False
    return not (source == "websocket" and label.startswith("server"))


def weigh(model: Scores, texts: list[tuple[str, str, str]], findings: list[TextFinding]) -> list[TextFinding]:
    """``texts``: (source, label, text) of every pupil-typed text scanned; ``findings``: the library's.
    Returns the findings with model evidence added (and model-only findings appended)."""
    short = [(s, lab, t) for s, lab, t in texts if t and len(t) <= MAX_CHARS and typed_by_pupil(s, lab)]
    if not short:
        return findings
    parts = [windows(t) for _, _, t in short]
    try:
        rows = model.score_batch([w for ws in parts for w in ws])
    except Exception as exc:  # noqa: BLE001 - the model is a second signal: the library's hits stand
        log.warning("risk model failed: %s", type(exc).__name__)
        return findings
    out = list(findings)
    alert, review = _alone_thresholds(model)
    at = 0
    for (source, label, text), ws in zip(short, parts, strict=True):
        block = rows[at : at + len(ws)]  # type: ignore[index]
        at += len(ws)
        scores = {c: max(float(r[i]) for r in block) for i, c in enumerate(model.categories)}
        index = next((i for i, f in enumerate(out) if f.text == text and f.source == source), None)
        hits: tuple[Hit, ...] = ()
        if index is not None:
            hits = tuple(_weighed(h, scores, _negated(text, h), min(STRONG, alert)) for h in out[index].hits)
        best = max(scores, key=scores.__getitem__)
        covered = {c for h in hits for c, cats in FAMILIES.items() if h.category in cats}
        if scores[best] >= review and best in PRIMARY and best not in covered:
            column = model.categories.index(best)
            said = ws[max(range(len(ws)), key=lambda k: float(block[k][column]))]  # where it was said
            hits = (*hits, _alone(best, scores[best], text, alert, _refined(model, said, best), said))
        if index is not None:
            out[index] = replace(out[index], hits=hits)
        elif hits:
            out.append(TextFinding(source=source, text=text, hits=hits, label=label))
    return out


def windows(text: str) -> list[str]:
    """``text`` itself, and when it is longer than ``WINDOW``, runs of its sentences of at most that many
    characters (a sentence longer than that is cut): what the model, trained on short texts, can read."""
    if len(text) <= WINDOW:
        return [text]
    out = [text]
    run = ""
    for sentence in _SENTENCE.split(text):
        while len(sentence) > WINDOW:
            if run:
                out.append(run)
                run = ""
            cut = sentence.rfind(" ", 0, WINDOW)
            cut = cut if cut > 0 else WINDOW
            out.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if run and len(run) + 1 + len(sentence) > WINDOW:
            out.append(run)
            run = sentence
        else:
            run = f"{run} {sentence}" if run else sentence
    if run:
        out.append(run)
    return out[: MAX_WINDOWS + 1]


def _alone_thresholds(model: Scores) -> tuple[float, float]:
    """(alert, review): chosen when the model was trained and kept in its file; else the defaults."""
    meta = getattr(model, "meta", {}) or {}
    try:
        alert = float(meta.get("alone_alert", ALONE_ALERT))  # type: ignore[arg-type]
        review = float(meta.get("alone_review", ALONE))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ALONE_ALERT, ALONE
    return alert, min(review, alert)


def _note(category: str, p: float) -> str:
    return f"model: {LABELS[category]} risk {p:.2f}"


def _negated(text: str, hit: Hit) -> bool:
    before = " ".join(text[: hit.start].lower().split()[-4:])
    return bool(_NEGATION.search(before))


def _weighed(hit: Hit, scores: dict[str, float], negated: bool = False, strong: float = STRONG) -> Hit:
    family = next((c for c, cats in FAMILIES.items() if hit.category in cats and c in scores), None)
    if family is None or scores[family] < NOTE:
        return hit
    p = scores[family]
    severity = hit.severity
    if negated:
        pass  # the model's score is shown, but "i would never..." is not raised on its word
    elif p >= strong:
        severity = max(severity, 4)
    elif p >= RAISE and severity < 4:
        severity += 1
    note = _note(family, p) + (f" (raised from {hit.severity})" if severity != hit.severity else "")
    return replace(hit, severity=severity, rules=(*hit.rules, note))


def _refined(model: Scores, text: str, family: str) -> str:
    """The library category a model-only finding is filed under: the model's split of its family
    (suicide or self-harm, bullying or hate speech, violence or weapons) where it has one."""
    refine = getattr(model, "refine", None)
    try:
        chosen = refine(text, family) if refine is not None else None
    except Exception as exc:  # noqa: BLE001 - filing under the family's first category is still right
        log.warning("risk model split failed: %s", type(exc).__name__)
        chosen = None
    return chosen if chosen in FAMILIES[family] else PRIMARY[family]


def _alone(
    category: str,
    p: float,
    text: str,
    threshold: float = ALONE_ALERT,
    filed: str | None = None,
    said: str | None = None,
) -> Hit:
    """The model's own finding on ``text``; ``said``: the part of it that scored (a long post's window),
    where a refusal or help-seeking word keeps it from alerting."""
    lowered = (said or text).lower()
    held = bool(_REFUSAL.search(lowered) or _HELP.search(lowered))
    alert = p >= threshold and not held
    why = (
        "model alone: an alert"
        if alert
        else "model alone: for review"
        + (", a negation or help-seeking word keeps it from alerting" if held else "")
    )
    return Hit(
        phrase=f"(model) {LABELS[category]} risk",
        category=filed or PRIMARY[category],
        severity=ALONE_ALERT_SEVERITY if alert else ALONE_SEVERITY,
        language="en",
        library_file="model",
        line=0,
        start=0,
        end=len(text),
        matched_text=text[:200],
        rules=(f"{_note(category, p)} ({why})",),
    )
