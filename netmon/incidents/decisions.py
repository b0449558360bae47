"""Incident decisions: from a :class:`~netmon.scan.findings.ScanResult` to the values of one incident row.

One flow (or WebSocket message) with any number of hits becomes ONE incident at the highest severity:

- the top hit is the one with the highest severity, then the longest phrase, then the earliest match;
- ``category``/``severity``/``phrase`` are the top hit's, ``phrases`` lists every distinct hit, highest first;
- ``excerpt`` shows the ORIGINAL text around each match (about 80 characters each side) with the match in
  ``[[ ]]``; several matches are joined with `` … ``;
- ``explanation`` says why each hit fired: phrase, library file and line, normalisation steps, rules weighed;
- ``dedup_key`` = sha256(user or client address | URL | top phrase): repeats within the de-duplication
  window raise the count of the existing incident (see :mod:`netmon.incidents.writer`).

Everything here is pure: no database, no I/O.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding

#: Characters of original text shown on each side of a match in the excerpt.
EXCERPT_CONTEXT = 80
#: At most this many matches are shown in one excerpt.
EXCERPT_MAX_MATCHES = 5
#: Default cap (characters) of the captured text stored with an incident.
CAPTURE_TEXT_CAP = 64 * 1024
#: Default cap (bytes) of the compressed snapshot stored with an incident; larger ones are dropped.
SNAPSHOT_CAP = 2 * 1024 * 1024
ELLIPSIS = " … "

HitFilter = Callable[[FlowContext, Hit], bool]


@dataclass(frozen=True, slots=True)
class Located:
    """A hit together with the finding (source, text) it was found in."""

    hit: Hit
    finding: TextFinding


@dataclass(frozen=True, slots=True)
class IncidentDraft:
    """The column values of a new incident, decided from one scan result (no database involved)."""

    time: datetime
    dedup_key: str
    values: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """Keyword arguments for :class:`netmon.store.incidents.Incident` (a fresh uid each call)."""
        return {
            "uid": new_uid(),
            "time": self.time,
            "last_seen": self.time,
            "count": 1,
            "dedup_key": self.dedup_key,
            **self.values,
        }


#: Random bytes for incident ids, drawn from the OS in bulk: ``uuid.uuid4()`` made a system call per id,
#: which released the GIL on the proxy's event loop and, with the incident writer's thread busy, held
#: every connection for milliseconds (tens at the 99th percentile on a loaded 2-core machine). Emptied in
#: a forked child, so that no two processes hand out the same ids.
_RANDOM = bytearray()
_RANDOM_LOCK = threading.Lock()
_RANDOM_BULK = 4096


def _forget_random() -> None:
    global _RANDOM, _RANDOM_LOCK
    _RANDOM = bytearray()
    _RANDOM_LOCK = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_forget_random)


def new_uid() -> str:
    """A public incident id: 32 hex characters of OS randomness (a unique prefix is enough to look one
    up); one system call per 256 ids."""
    global _RANDOM
    with _RANDOM_LOCK:
        if len(_RANDOM) < 16:
            _RANDOM = bytearray(os.urandom(_RANDOM_BULK))
        chunk = bytes(_RANDOM[-16:])
        del _RANDOM[-16:]
    return chunk.hex()


def rank(hit: Hit) -> tuple[int, int, int]:
    """Sort key, highest first: severity, then phrase length, then the earliest match."""
    return (hit.severity, len(hit.phrase), -hit.start)


def located_hits(result: ScanResult, hit_filter: HitFilter | None = None) -> list[Located]:
    """Every hit of ``result`` that ``hit_filter`` keeps, highest rank first.

    A filter whose ``per_category`` attribute is true promises that its answer depends only on the context
    and the hit's category and severity (as the policy's "is this recorded for this person" does): it is
    then asked once per category and severity of the result, not once per hit (a page of topic words
    holds dozens of hits in two or three categories)."""
    keep = hit_filter
    if hit_filter is not None and getattr(hit_filter, "per_category", False):
        answers: dict[tuple[str, int], bool] = {}

        def keep(context: FlowContext, hit: Hit) -> bool:
            key = (hit.category, hit.severity)
            answer = answers.get(key)
            if answer is None:
                answer = answers[key] = bool(hit_filter(context, hit))
            return answer

    kept = [
        Located(hit, finding)
        for finding in result.findings
        for hit in finding.hits
        if keep is None or keep(result.context, hit)
    ]
    kept.sort(key=lambda located: rank(located.hit), reverse=True)
    return kept


def dedup_key(context: FlowContext, top_phrase: str) -> str:
    """sha256 of (user, or the client address when the user is unknown) | URL | top phrase."""
    who = context.user or context.client_ip
    return hashlib.sha256(f"{who}|{context.url}|{top_phrase}".encode()).hexdigest()


def _clean(text: str) -> str:
    """One line: whitespace runs (newlines, tabs) become single spaces."""
    return " ".join(text.split())


def excerpt(
    located: Iterable[Located], context: int = EXCERPT_CONTEXT, max_matches: int = EXCERPT_MAX_MATCHES
) -> str:
    """The original text around each match, the match in ``[[ ]]``, several joined with `` … ``.

    Matches whose windows overlap in the same text are shown in one piece; hits without text (image
    hashes, URL lists) contribute nothing.
    """
    by_text: dict[int, tuple[TextFinding, list[tuple[int, int]]]] = {}
    order: list[int] = []
    for item in located:
        text = item.finding.text
        start, end = max(0, item.hit.start), min(len(text), item.hit.end)
        if not text or end <= start:
            continue
        key = id(item.finding)
        if key not in by_text:
            by_text[key] = (item.finding, [])
            order.append(key)
        spans = by_text[key][1]
        if (start, end) not in spans and sum(len(s) for _, s in by_text.values()) < max_matches:
            spans.append((start, end))
    pieces: list[str] = []
    for key in order:
        finding, spans = by_text[key]
        pieces.extend(_pieces(finding.text, spans, context))
    return ELLIPSIS.join(pieces)


def _pieces(text: str, spans: list[tuple[int, int]], context: int) -> list[str]:
    """Merge overlapping windows and mark each match inside its window."""
    priority = {span: i for i, span in reversed(list(enumerate(spans)))}  # spans come highest rank first
    windows: list[tuple[int, int, list[tuple[int, int]]]] = []
    for start, end in sorted(spans):
        lo, hi = max(0, start - context), min(len(text), end + context)
        if windows and lo <= windows[-1][1]:
            wlo, whi, marks = windows[-1]
            windows[-1] = (wlo, max(whi, hi), marks + [(start, end)])
        else:
            windows.append((lo, hi, [(start, end)]))
    windows.sort(key=lambda w: min(priority[span] for span in w[2]))
    pieces = []
    for lo, hi, marks in windows:
        out: list[str] = []
        pos = lo
        for start, end in _union(marks):  # overlapping matches are marked as one
            out.append(text[pos:start])
            out.append(f"[[{text[start:end]}]]")
            pos = end
        out.append(text[pos:hi])
        piece = _clean("".join(out))
        pieces.append(("…" if lo > 0 else "") + piece + ("…" if hi < len(text) else ""))
    return pieces


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with overlapping or touching ones merged: "kill" + "kill myself" -> "kill myself"."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def explanation(located: Iterable[Located]) -> list[dict[str, Any]]:
    """Why the incident fired: one entry per hit, highest first."""
    return [
        {
            "phrase": item.hit.phrase,
            "category": item.hit.category,
            "severity": item.hit.severity,
            "language": item.hit.language,
            "library_file": item.hit.library_file,
            "line": item.hit.line,
            "matched_text": item.hit.matched_text,
            "source": item.finding.source,
            "label": item.finding.label,
            "steps": list(item.hit.steps),
            "rules": list(item.hit.rules),
        }
        for item in located
    ]


def phrases(located: Iterable[Located]) -> list[dict[str, Any]]:
    """Distinct (phrase, category) pairs, highest first, each with how many times it matched."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for item in located:
        key = (item.hit.phrase, item.hit.category)
        if key in seen:
            seen[key]["matches"] += 1
        else:
            seen[key] = {
                "phrase": item.hit.phrase,
                "category": item.hit.category,
                "severity": item.hit.severity,
                "matches": 1,
            }
    return list(seen.values())


def capture_text(result: ScanResult, cap: int = CAPTURE_TEXT_CAP) -> str:
    """The extracted text the pupil saw (findings with hits first), capped at ``cap`` characters."""
    ordered = sorted(result.findings, key=lambda f: not f.hits)
    parts = [f"[{f.source}{': ' + f.label if f.label else ''}]\n{f.text}" for f in ordered if f.text]
    text = "\n\n".join(parts)
    return text if len(text) <= cap else text[:cap]


def _cut(value: str | None, n: int) -> str | None:
    """Fit a value to its column (PostgreSQL enforces lengths; SQLite does not)."""
    return value[:n] if value is not None else None


def build(
    result: ScanResult,
    *,
    hit_filter: HitFilter | None = None,
    capture_cap: int = CAPTURE_TEXT_CAP,
    snapshot_cap: int = SNAPSHOT_CAP,
) -> IncidentDraft | None:
    """Decide the incident for ``result``; ``None`` when no hit is left after ``hit_filter``."""
    located = located_hits(result, hit_filter)
    if not located:
        return None
    top = located[0]
    ctx = result.context
    snapshot = (
        result.snapshot if result.snapshot is not None and len(result.snapshot) <= snapshot_cap else None
    )
    if any(f.source == "image" for f in result.findings):
        snapshot = None  # a matched image is never stored, whatever an adapter hands over
    values: dict[str, Any] = {
        "site": (ctx.site or "")[:100],
        "client_ip": ctx.client_ip[:45],
        "mac": _cut(ctx.mac, 17),
        "user": _cut(ctx.user, 150),
        "role": _cut(ctx.role, 20),
        "year_group": _cut(ctx.year_group, 20),
        "groups": list(ctx.groups),
        "device": _cut(ctx.device, 100),
        "host": ctx.host[:255],
        "url": ctx.url,
        "source": top.finding.source[:20],
        "category": top.hit.category[:50],
        "severity": top.hit.severity,
        "phrase": top.hit.phrase[:300],
        "phrases": phrases(located),
        "excerpt": excerpt(located),
        "explanation": explanation(located),
        "evidence": dict(result.evidence),
        "capture_text": capture_text(result, capture_cap),
        "snapshot": snapshot,
        "snapshot_type": _cut(result.snapshot_type, 100) if snapshot is not None else None,
    }
    return IncidentDraft(
        time=datetime.fromtimestamp(ctx.time, UTC),
        dedup_key=dedup_key(ctx, top.hit.phrase),
        values=values if not _may_hold_nul(values) else {k: _storable(v) for k, v in values.items()},
    )


def _may_hold_nul(values: dict[str, Any]) -> bool:
    """False only when no string in ``values`` (or in the lists, tuples and dicts inside) holds a NUL, so
    that :func:`_storable` would change nothing. A flat loop without a call per value: about half the cost
    of the walk, which only the rare result with a NUL then pays."""
    stack: list[Any] = list(values.values())
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                return True
        elif kind is list or kind is tuple:
            extend(value)
        elif kind is dict:
            extend(value.values())
        elif isinstance(value, str | list | dict):  # a subclass: let the walk decide
            return True
    return False


def _storable(value: Any) -> Any:
    """PostgreSQL text and JSON cannot hold NUL: a captured NUL becomes U+FFFD (in every store, so that
    SQLite and PostgreSQL keep the same incident). Lists and dicts are walked."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    return value
