"""Extracted text: labelled segments joined into one string, and what is never text (secrets, blobs).

Offsets into ``Extracted.text`` are offsets into what was scanned; ``label_at(offset)`` says which part
(title, alt text, a JSON key, a form field) a match came from.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SEP = "\n"

#: Fields never scanned or stored, whatever they contain (credentials and tokens).
SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|csrf|otp|captcha|__viewstate|__eventvalidation|"
    r"authenticity|api[_-]?key|credential|session",
    re.I,
)
#: Values that are machine data, not words: long runs without spaces (ids, base64, URLs).
BLOB_LEN = 120


def is_blob(s: str) -> bool:
    """Machine data, not words: a bare URL, or a long run without spaces (ids, base64)."""
    if s.startswith(("http://", "https://", "data:", "blob:")) and " " not in s:
        return True
    return len(s) > BLOB_LEN and " " not in s


@dataclass(frozen=True, slots=True)
class Extracted:
    """Text made of labelled segments joined by ``SEP``; offsets index ``text``."""

    text: str
    starts: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    kind: str = ""
    skipped: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text

    def __contains__(self, words: str) -> bool:
        return words in self.text

    def label_at(self, offset: int) -> str:
        """The label of the segment holding ``offset`` ("" when there are no segments)."""
        i = bisect_right(self.starts, offset) - 1
        return self.labels[i] if i >= 0 else ""

    def segments(self) -> Iterator[tuple[str, str]]:
        """(label, text) of every segment, in order."""
        for i, start in enumerate(self.starts):
            end = self.starts[i + 1] - len(SEP) if i + 1 < len(self.starts) else len(self.text)
            yield self.labels[i], self.text[start:end]


def join(parts: Iterable[tuple[str, str]], kind: str = "", skipped: Iterable[str] = ()) -> Extracted:
    """Join (label, text) parts with ``SEP`` into one ``Extracted``; empty parts are dropped."""
    starts: list[int] = []
    labels: list[str] = []
    texts: list[str] = []
    pos = 0
    for label, text in parts:
        if not text or text.isspace():
            continue
        starts.append(pos)
        labels.append(label)
        texts.append(text)
        pos += len(text) + len(SEP)
    return Extracted(SEP.join(texts), tuple(starts), tuple(labels), kind, tuple(skipped))
