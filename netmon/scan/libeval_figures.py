"""The figures of a library evaluation (``netmon.scan.libeval``): what was scanned, how each item came
out, and the counts per category and per language."""

from __future__ import annotations

from dataclasses import dataclass, field

from netmon.scan.findings import Hit

#: Severity at and above which a message counts towards the headline recall target.
HIGH_SEVERITY = 4


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to scan: a labelled message or a benign page."""

    id: str
    text: str
    expect: str | None  # category id, or None for benign
    min_severity: int | None  # None: the evaluation's min_severity
    origin: str  # "file.jsonl:12" or the page path
    kind: str  # "message" (JSONL) or "page" (file in a directory)
    form: str = "plain"  # obfuscation form, e.g. "leet"; "plain" when not obfuscated
    lang: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    item: Item
    hits: tuple[Hit, ...]
    threshold: int  # severity the item was judged at
    ok: bool  # caught (expect set) or quiet (benign)
    raised: bool = False  # the risk model raised a hit's severity or added a finding (``--as typed``)
    ok_without_model: bool | None = None  # the same judgement without the model; None: no model ran

    @property
    def fired(self) -> tuple[Hit, ...]:
        """Hits at or above the item's threshold (for a miss: every hit, to show what did fire)."""
        if self.item.expect is None:
            return tuple(h for h in self.hits if h.severity >= self.threshold)
        return self.hits


class _Recalls:
    """Recall over all labelled messages and over those graded 4-5 (a category's or a language's)."""

    __slots__ = ()
    messages: int
    caught: int
    high: int
    high_caught: int

    @property
    def recall(self) -> float | None:
        return self.caught / self.messages if self.messages else None

    @property
    def recall_high(self) -> float | None:
        return self.high_caught / self.high if self.high else None


@dataclass(frozen=True, slots=True)
class CategoryFigures(_Recalls):
    category: str
    messages: int
    caught: int
    high: int  # messages graded >= HIGH_SEVERITY
    high_caught: int
    alarms: int  # items with an alarm of this category (severity >= the evaluation's min_severity)
    correct_alarms: int  # ... on items that expect this category

    @property
    def precision(self) -> float | None:
        return self.correct_alarms / self.alarms if self.alarms else None


@dataclass(frozen=True, slots=True)
class LanguageFigures(_Recalls):
    """One language's figures: its labelled messages (recall over all of them and over those graded
    4-5) and its benign look-alikes (traps) and how many stayed quiet. Items without ``lang`` are "-"."""

    lang: str
    messages: int
    caught: int
    high: int
    high_caught: int
    traps: int
    trap_alarms: int


@dataclass(frozen=True, slots=True)
class Report:
    min_severity: int
    outcomes: tuple[Outcome, ...]
    categories: tuple[CategoryFigures, ...]
    forms: tuple[tuple[str, int, int], ...]  # (form, high messages, high caught)
    languages: tuple[tuple[str, int, int], ...]  # (lang, high messages, high caught)
    sources: tuple[tuple[str, int], ...] = field(default=())  # (corpus path, items)
    by_language: tuple[LanguageFigures, ...] = field(default=())
    path: str = "library"  # how items were scored (netmon.scan.libeval_paths.PATHS)
    model: bool = False  # the risk model took part

    @property
    def model_raised(self) -> int:
        """Messages whose severity the model raised (or that it alone made a finding of)."""
        return sum(1 for o in self.outcomes if o.raised)

    @property
    def model_caught(self) -> int:
        """Labelled messages caught only because of the model."""
        return sum(1 for o in self.outcomes if o.item.expect and o.ok and o.ok_without_model is False)

    @property
    def model_alarms(self) -> int:
        """Benign items that alarm only because of the model."""
        return sum(1 for o in self.outcomes if o.item.expect is None and not o.ok and o.ok_without_model)

    @property
    def misses(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.item.expect is not None and not o.ok)

    @property
    def false_alarms(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.item.expect is None and not o.ok)

    @property
    def pages(self) -> int:
        return sum(1 for o in self.outcomes if o.item.kind == "page")

    @property
    def page_alarms(self) -> int:
        return sum(1 for o in self.false_alarms if o.item.kind == "page")

    @property
    def traps(self) -> int:
        return sum(1 for o in self.outcomes if o.item.kind == "message" and o.item.expect is None)

    @property
    def trap_alarms(self) -> int:
        return sum(1 for o in self.false_alarms if o.item.kind == "message")

    @property
    def false_alarms_per_1000(self) -> float | None:
        """False alarms per 1,000 benign pages (traps when the corpus holds no pages)."""
        if self.pages:
            return 1000.0 * self.page_alarms / self.pages
        if self.traps:
            return 1000.0 * self.trap_alarms / self.traps
        return None

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.categories)

    @property
    def caught(self) -> int:
        return sum(c.caught for c in self.categories)

    @property
    def high(self) -> int:
        return sum(c.high for c in self.categories)

    @property
    def high_caught(self) -> int:
        return sum(c.high_caught for c in self.categories)

    @property
    def recall(self) -> float | None:
        return self.caught / self.messages if self.messages else None

    @property
    def recall_high(self) -> float | None:
        return self.high_caught / self.high if self.high else None
