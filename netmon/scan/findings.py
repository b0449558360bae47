"""Plain, immutable results passed from the scanner to the incident recorder.

These cross a process boundary (the scan worker pool), so they hold only picklable plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from pickle import PickleBuffer
from typing import Any

#: Byte strings at least this long are pickled out of band (``pickled_as_tuple(out_of_band=...)``).
OUT_OF_BAND = 4096


def pickled_as_tuple[T](cls: type[T] | None = None, *, out_of_band: tuple[str, ...] = ()) -> Any:
    """Pickle a frozen, slotted dataclass as its constructor and a tuple of its fields.

    The default for slotted dataclasses runs Python code per object (``__getstate__`` looks the
    fields up each time); a scan job and its result are pickled for every page, on the proxy's event
    loop, so this keeps it to one C-level attribute fetch. Every field must be an ``__init__`` argument,
    in order. With pickle protocol 5, long ``bytes`` in the ``out_of_band`` fields go as
    ``PickleBuffer``: given a ``buffer_callback``, the pickle holds no copy of a page body."""

    def wrap(cls: type[T]) -> type[T]:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        assert all(f.init for f in fields(cls)), cls  # type: ignore[arg-type]
        get = attrgetter(*names)
        values = get if len(names) > 1 else lambda obj: (get(obj),)
        spots = [names.index(n) for n in out_of_band]

        def __reduce_ex__(self: Any, protocol: int) -> tuple[type[T], tuple[Any, ...]]:  # noqa: N807
            args = values(self)
            if protocol >= 5 and spots:
                args = list(args)
                for i in spots:
                    if type(args[i]) is bytes and len(args[i]) >= OUT_OF_BAND:
                        args[i] = PickleBuffer(args[i])
                args = tuple(args)
            return cls, args

        cls.__reduce_ex__ = __reduce_ex__  # type: ignore[method-assign,assignment]
        return cls

    return wrap if cls is None else wrap(cls)


#: Where a piece of text came from; stored on every incident.
SOURCES = ("search", "page", "form", "chat", "websocket", "image", "url-list", "sni")


@pickled_as_tuple
@dataclass(frozen=True, slots=True)
class Hit:
    """One library phrase found in one piece of text, with everything needed to explain it."""

    phrase: str  # the library phrase as written in the library file
    category: str  # category id, e.g. "self_harm"
    severity: int  # 1-5
    language: str  # library language tag, e.g. "en", "cy"
    library_file: str  # library file the phrase came from (relative to the library root)
    line: int  # line number in that file
    start: int  # offset of the match in the original text
    end: int  # end offset (exclusive) in the original text
    matched_text: str  # the original text of the match, as the pupil saw it
    steps: tuple[str, ...] = ()  # normalisation steps that applied to this match, e.g. ("leetspeak",)
    rules: tuple[str, ...] = ()  # context rules weighed, e.g. ("exception 'kill the process' absent",)


@pickled_as_tuple
@dataclass(frozen=True, slots=True)
class TextFinding:
    """The hits in one piece of scanned text (a page, a search query, a form field...)."""

    source: str  # one of SOURCES
    text: str  # the extracted text that was scanned (original, not normalised)
    hits: tuple[Hit, ...]
    label: str = ""  # e.g. the form field name, the search engine, "ws client->server"


@pickled_as_tuple
@dataclass(frozen=True, slots=True)
class ScanStats:
    """Counted skips and work of one scan, without content."""

    bytes_scanned: int = 0
    skipped: tuple[str, ...] = ()  # reasons, e.g. ("binary-type", "body-cap", "decompression-bomb")


@pickled_as_tuple
@dataclass(frozen=True, slots=True)
class FlowContext:
    """Who/where of one flow, filled by the adapters, plain data only."""

    time: float  # POSIX timestamp (UTC)
    client_ip: str
    host: str  # hostname (SNI or Host header; never the bare IP in transparent mode when a name is known)
    url: str
    method: str = "GET"
    mac: str | None = None
    user: str | None = None
    role: str | None = None
    year_group: str | None = None
    groups: tuple[str, ...] = ()
    site: str = ""
    device: str | None = None  # e.g. a short user-agent family


@pickled_as_tuple
@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one flow (or one WebSocket message) produced: findings plus the optional capture."""

    context: FlowContext
    findings: tuple[TextFinding, ...] = ()
    stats: ScanStats = field(default_factory=ScanStats)
    snapshot: bytes | None = None  # sanitised, compressed snapshot of what the pupil received
    snapshot_type: str | None = None  # media type of the snapshot before compression
    evidence: dict[str, object] = field(default_factory=dict)  # non-text evidence (image hashes, list entry)

    @property
    def hits(self) -> tuple[Hit, ...]:
        return tuple(h for f in self.findings for h in f.hits)
