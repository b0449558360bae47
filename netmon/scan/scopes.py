"""Apply the overlay's host-scoped lines to a page's hits (docs/library-format.md, "Quieting a phrase on
one site").

``Quieting(library)`` indexes ``library.scoped`` by host; ``quiet(hits, text, host, path)`` drops the hits
a line scoped to that page removes, or cancels with its further exceptions (found with a small matcher of
their own, compiled once per library, so they are normalised exactly as the text is and must overlap the
hit, starting at a word start, as ``unless:`` terms do). The scan job calls it for page bodies only: what
a pupil types is always matched against the whole library (``netmon.scan.job``).
"""

from __future__ import annotations

from collections.abc import Sequence

from netmon.scan.findings import Hit
from netmon.scan.library import Category, Entry, Library, Scoped
from netmon.scan.matching import Matcher
from netmon.scan.normalise import normalise
from netmon.scan.site_scope import host_suffixes, scope_applies, split_scope

_TERMS = "scoped-exceptions"


class Quieting:
    """The host-scoped lines of one library, ready for the scan (built once per library)."""

    def __init__(self, library: Library) -> None:
        self.fingerprint = library.fingerprint
        by_host: dict[str, list[tuple[str, Scoped]]] = {}
        terms: dict[str, str] = {}
        for line in library.scoped:
            for scope in line.scopes:
                by_host.setdefault(split_scope(scope)[0], []).append((scope, line))
            for term in line.unless:
                terms.setdefault(normalise(term), term)
        self._by_host = by_host
        self._terms = terms
        self._matcher: Matcher | None = None

    def __bool__(self) -> bool:
        return bool(self._by_host)

    def lines_for(self, host: str, path: str) -> list[Scoped]:
        """The scoped lines that apply to a page of ``host`` at ``path``."""
        found: list[Scoped] = []
        for suffix in host_suffixes(host):
            for scope, line in self._by_host.get(suffix, ()):
                if line not in found and scope_applies(scope, host, path):
                    found.append(line)
        return found

    def _exceptions(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, normalised term) of every scoped exception term in ``text``."""
        if self._matcher is None:
            entries = tuple(
                Entry(term, norm, _TERMS, "und", 1, _TERMS, 0, embedded=True)
                for norm, term in self._terms.items()
            )
            self._matcher = Matcher.compile(
                Library("", None, (Category(_TERMS, _TERMS, ""),), entries, fingerprint=self.fingerprint)
            )
        out = []
        for hit in self._matcher.scan(text, grammar=False):
            if hit.start == 0 or not text[hit.start - 1].isalnum():  # from a word start, as unless: terms
                out.append((hit.start, hit.end, normalise(hit.phrase)))
        return out

    def quiet(self, hits: Sequence[Hit], text: str, host: str, path: str) -> tuple[Hit, ...]:
        """``hits`` less those the lines scoped to this page remove or cancel."""
        lines = self.lines_for(host, path) if hits and self._by_host else []
        if not lines:
            return tuple(hits)
        removed = {line.key for line in lines if line.removal}
        extra: dict[tuple[str, str], set[str]] = {}
        for line in lines:
            if not line.removal:
                extra.setdefault(line.key, set()).update(normalise(t) for t in line.unless)
        keyed = [(hit, (hit.category, normalise(hit.phrase))) for hit in hits]
        kept = [(hit, key) for hit, key in keyed if key not in removed]
        if not any(key in extra for _, key in kept):
            return tuple(hit for hit, _ in kept)
        found = self._exceptions(text)
        out = []
        for hit, key in kept:
            terms = extra.get(key)
            if terms and any(t in terms and s < hit.end and hit.start < e for s, e, t in found):
                continue
            out.append(hit)
        return tuple(out)


_last: list[Quieting] = []


def quieting_for(library: Library | None) -> Quieting | None:
    """The ``Quieting`` of ``library`` (kept for the last library seen), or None when it has no scoped
    lines: the scan's fast path."""
    if library is None or not library.scoped:
        return None
    if _last and _last[0].fingerprint == library.fingerprint:
        return _last[0]
    quieting = Quieting(library)
    _last[:] = [quieting]
    return quieting
