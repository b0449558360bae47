"""An index of known-image hashes: exact digests by set lookup, perceptual hashes by Hamming distance.

Perceptual hashes are kept as one contiguous ``uint64`` numpy array per type; a query is a vectorised
XOR + popcount (``numpy.bitwise_count``) over the whole array, ~1-3 ms at 1,000,000 hashes on one core
(see ``bench/bench_hashindex.py``). Built once per (re)load; immutable afterwards, so one index can be
shared by worker threads without locks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from netmon.hashlists import EXACT_TYPES, PERCEPTUAL_TYPES, HashEntry
from netmon.imagehashing import ImageHashes

#: Default largest Hamming distance (of 64 bits) that counts as the same picture. Resized and
#: recompressed copies measure 0-4; unrelated pictures ~32 (half the bits).
DEFAULT_THRESHOLD = 8


@dataclass(frozen=True, slots=True)
class HashMatch:
    entry: HashEntry
    distance: int  # 0 for exact digests


class _Perceptual:
    __slots__ = ("entries", "values")

    def __init__(self, entries: list[HashEntry]) -> None:
        self.entries = entries
        self.values = np.fromiter((int(e.hash, 16) for e in entries), dtype=np.uint64, count=len(entries))

    def nearest(self, query: int, threshold: int) -> tuple[int, int] | None:
        """(index, distance) of the closest stored hash within ``threshold``, or None."""
        if not len(self.values):
            return None
        distances = np.bitwise_count(self.values ^ np.uint64(query))
        best = int(np.argmin(distances))
        distance = int(distances[best])
        return (best, distance) if distance <= threshold else None


class HashIndex:
    """Look up an image's hashes against every loaded list."""

    def __init__(self, entries: Iterable[HashEntry], threshold: int = DEFAULT_THRESHOLD) -> None:
        if not 0 <= threshold <= 32:
            raise ValueError(f"perceptual threshold must be 0-32 bits (got {threshold})")
        self.threshold = threshold
        self._exact: dict[str, dict[str, HashEntry]] = {kind: {} for kind in EXACT_TYPES}
        perceptual: dict[str, list[HashEntry]] = {kind: [] for kind in PERCEPTUAL_TYPES}
        count = 0
        for entry in entries:
            count += 1
            if entry.type in EXACT_TYPES:
                self._exact[entry.type].setdefault(entry.hash, entry)
            else:
                perceptual[entry.type].append(entry)
        self._perceptual = {kind: _Perceptual(items) for kind, items in perceptual.items()}
        self.size = count
        self.categories = frozenset(
            {e.category for t in self._exact.values() for e in t.values()}
            | {e.category for items in perceptual.values() for e in items}
        )

    def __len__(self) -> int:
        return self.size

    def match(self, hashes: ImageHashes) -> HashMatch | None:
        """The best match for one image: an exact digest first, else the closest perceptual hash."""
        for kind, table in self._exact.items():
            entry = table.get(hashes.digest(kind))
            if entry is not None:
                return HashMatch(entry, 0)
        best: HashMatch | None = None
        for kind, index in self._perceptual.items():
            found = index.nearest(int(hashes.digest(kind), 16), self.threshold)
            if found is not None and (best is None or found[1] < best.distance):
                best = HashMatch(index.entries[found[0]], found[1])
        return best

    def nearest_perceptual(self, kind: str, value: int) -> tuple[HashEntry, int] | None:
        """Closest entry of one perceptual type within the threshold (for benchmarks and diagnostics)."""
        found = self._perceptual[kind].nearest(value, self.threshold)
        return None if found is None else (self._perceptual[kind].entries[found[0]], found[1])


EMPTY_INDEX = HashIndex(())
