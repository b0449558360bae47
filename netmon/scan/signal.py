"""The learned second signal, applied to what a pupil typed (docs/model-card.md).

:func:`weigh` runs the shipped :class:`~netmon.scan.model.RiskModel` over the short pupil-typed texts of
one scan (search queries, form fields, chat and AI prompts, messages a device sent over a WebSocket) and
adjusts the library's hits where the model's measured precision supports it:

- a library or grammar hit of a category the model covers gets the model's score in its explanation
  (``model: suicide/self-harm risk 0.93``), which also ranks the DSL's queue;
- with a score >= ``RAISE`` such a hit is raised one level (to at most 4), and with a score >= ``STRONG``
  to at least 4: the library saw the topic and the model says the pupil's own words carry the risk
  (precision 0.92-1.00 at 0.5 on the held-out and dev splits, 1.7 benign page sentences per 1,000);
- the model alone (no library hit in the text) never raises an alert: a score >= ``ALONE`` becomes a
  severity-2 finding for review, because on fresh wording the model's recall is only 0.5-0.8 and it
  cannot read negation ("i would never...");
- it never lowers a severity, and never raises a hit with a negation in the few words before it
  ("i would never hurt myself"): negation and help-seeking are the grammar's to judge.

Page bodies and long texts are never scored (the model was trained on short texts).
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
MAX_CHARS = 2000
NOTE, RAISE, STRONG, ALONE = 0.3, 0.5, 0.8, 0.9
#: The model cannot read negation: a hit with one of these in the few words before it is never raised.
_NEGATION = re.compile(
    r"\b(?:never|not|no|don'?t|dont|won'?t|wouldn'?t|would not|can'?t|cannot|isn'?t|nobody)\b"
)
ALONE_SEVERITY = 2


class Scores(Protocol):
    categories: tuple[str, ...]

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
    try:
        rows = model.score_batch([t for _, _, t in short])
    except Exception as exc:  # noqa: BLE001 - the model is a second signal: the library's hits stand
        log.warning("risk model failed: %s", type(exc).__name__)
        return findings
    out = list(findings)
    for (source, label, text), row in zip(short, rows, strict=True):  # type: ignore[call-overload]
        scores = {c: float(p) for c, p in zip(model.categories, row, strict=True)}
        index = next((i for i, f in enumerate(out) if f.text == text and f.source == source), None)
        if index is not None:
            hits = tuple(_weighed(h, scores, _negated(text, h)) for h in out[index].hits)
            out[index] = replace(out[index], hits=hits)
            continue
        best = max(scores, key=scores.__getitem__)
        if scores[best] >= ALONE and best in PRIMARY:
            out.append(
                TextFinding(source=source, text=text, hits=(_alone(best, scores[best], text),), label=label)
            )
    return out


def _note(category: str, p: float) -> str:
    return f"model: {LABELS[category]} risk {p:.2f}"


def _negated(text: str, hit: Hit) -> bool:
    before = " ".join(text[: hit.start].lower().split()[-4:])
    return bool(_NEGATION.search(before))


def _weighed(hit: Hit, scores: dict[str, float], negated: bool = False) -> Hit:
    family = next((c for c, cats in FAMILIES.items() if hit.category in cats and c in scores), None)
    if family is None or scores[family] < NOTE:
        return hit
    p = scores[family]
    severity = hit.severity
    if negated:
        pass  # the model's score is shown, but "i would never..." is not raised on its word
    elif p >= STRONG:
        severity = max(severity, 4)
    elif p >= RAISE and severity < 4:
        severity += 1
    note = _note(family, p) + (f" (raised from {hit.severity})" if severity != hit.severity else "")
    return replace(hit, severity=severity, rules=(*hit.rules, note))


def _alone(category: str, p: float, text: str) -> Hit:
    return Hit(
        phrase=f"(model) {LABELS[category]} risk",
        category=PRIMARY[category],
        severity=ALONE_SEVERITY,
        language="en",
        library_file="model",
        line=0,
        start=0,
        end=len(text),
        matched_text=text[:200],
        rules=(_note(category, p) + " (model alone: for review, never an alert)",),
    )
