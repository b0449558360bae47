"""An index of known-image hashes: exact digests by sorted lookup, perceptual hashes by Hamming distance.

Everything is kept in numpy arrays (a million hashes take ~16-40 MB, not a Python object each):

- exact digests (md5, sha1, sha256): one sorted fixed-width bytes array per type, looked up with
  ``searchsorted`` (a binary search: microseconds at any size);
- perceptual hashes (pHash, dHash): one contiguous ``uint64`` array per type; a small table is scanned
  with a vectorised XOR + popcount (``numpy.bitwise_count``); from 32,768 hashes a multi-index over four
  16-bit chunks narrows each query to a few thousand candidates (~0.1-1 ms at 1,000,000 hashes on one
  core against ~2-6 ms for the scan; see ``bench/bench_hashindex.py``).

Built once per (re)load and immutable afterwards, so worker threads share one index without locks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from netmon.lists.hashlists import (
    EXACT_TYPES,
    PERCEPTUAL_TYPES,
    HashColumns,
    HashEntry,
    columns_from_entries,
)
from netmon.lists.imagehashing import ImageHashes

#: Default largest Hamming distance (of 64 bits) that counts as the same picture. Resized and
#: recompressed copies measure 0-4; unrelated pictures ~32 (half the bits).
DEFAULT_THRESHOLD = 8


@dataclass(frozen=True, slots=True)
class HashMatch:
    entry: HashEntry
    distance: int  # 0 for exact digests


class _Table:
    """One hash type across every list: values plus (list, row) to find the entry again."""

    __slots__ = ("kind", "values", "source", "row")

    def __init__(self, kind: str, lists: Sequence[HashColumns], sort: bool) -> None:
        self.kind = kind
        parts = [(i, lst.columns[kind]) for i, lst in enumerate(lists) if kind in lst.columns]
        if parts:
            values = np.concatenate([col.values for _, col in parts])
            source = np.concatenate([np.full(len(col), i, dtype=np.uint32) for i, col in parts])
            row = np.concatenate([np.arange(len(col), dtype=np.uint32) for _, col in parts])
        else:
            dtype = np.uint64 if kind in PERCEPTUAL_TYPES else f"S{EXACT_TYPES[kind] // 2}"
            values = np.empty(0, dtype=dtype)
            source = np.empty(0, dtype=np.uint32)
            row = np.empty(0, dtype=np.uint32)
        if sort and len(values):
            order = np.argsort(values, kind="stable")
            values, source, row = values[order], source[order], row[order]
        self.values = values
        self.source = source
        self.row = row

    def __len__(self) -> int:
        return len(self.values)


#: Perceptual tables at least this big get a multi-index (below it a plain scan takes microseconds).
MIH_MIN_SIZE = 32_768
_CHUNKS = 4  # 64 bits = 4 chunks of 16 bits
_MASKS: dict[int, np.ndarray] = {}


def _masks(radius: int) -> np.ndarray:
    """Every 16-bit value with at most ``radius`` bits set (XOR masks for the probes of one chunk)."""
    if radius not in _MASKS:
        values = [0]
        for r in range(1, radius + 1):
            values += [sum(1 << b for b in bits) for bits in combinations(range(16), r)]
        _MASKS[radius] = np.array(values, dtype=np.int64)
    return _MASKS[radius]


class _MultiIndex:
    """Multi-index hashing (Norouzi et al.): by the pigeonhole principle a hash within distance T of the
    query matches it within T // 4 bits in at least one of its four 16-bit chunks. Per chunk: hashes
    ordered by that chunk, bucket starts (a counting sort), and the hashes themselves in that order, so a
    probe reads contiguous memory. ~0.1-1 ms per query at 1,000,000 hashes instead of ~2-6 ms for a scan.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.tables: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for c in range(_CHUNKS):
            chunk = ((values >> np.uint64(16 * c)) & np.uint64(0xFFFF)).astype(np.uint16)
            order = np.argsort(chunk, kind="stable").astype(np.uint32)
            starts = np.zeros(65537, dtype=np.int64)
            np.cumsum(np.bincount(chunk, minlength=65536), out=starts[1:])
            self.tables.append((starts, order, values[order]))

    def nearest(self, query: int, threshold: int) -> tuple[int, int] | None:
        masks = _masks(threshold // _CHUNKS)
        q = np.uint64(query)
        best_distance, best_row = threshold + 1, -1
        for c, (starts, order, ordered) in enumerate(self.tables):
            probes = masks ^ ((query >> (16 * c)) & 0xFFFF)
            lo = starts[probes]
            n = starts[probes + 1] - lo
            total = int(n.sum())
            if not total:
                continue
            idx = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)
            distances = np.bitwise_count(ordered[idx] ^ q)
            i = int(np.argmin(distances))
            if int(distances[i]) < best_distance:
                best_distance, best_row = int(distances[i]), int(order[idx[i]])
        return (best_row, best_distance) if best_row >= 0 else None


class HashIndex:
    """Look up an image's hashes against every loaded list."""

    def __init__(
        self,
        entries: Iterable[HashEntry] = (),
        threshold: int = DEFAULT_THRESHOLD,
        lists: Sequence[HashColumns] | None = None,
    ) -> None:
        if not 0 <= threshold <= 32:
            raise ValueError(f"perceptual threshold must be 0-32 bits (got {threshold})")
        self.threshold = threshold
        self.lists: tuple[HashColumns, ...] = tuple(lists or ()) + tuple(columns_from_entries(list(entries)))
        self._exact = {kind: _Table(kind, self.lists, sort=True) for kind in EXACT_TYPES}
        self._perceptual = {kind: _Table(kind, self.lists, sort=False) for kind in PERCEPTUAL_TYPES}
        self._mih = {
            kind: _MultiIndex(t.values)
            for kind, t in self._perceptual.items()
            if len(t) >= MIH_MIN_SIZE and threshold // _CHUNKS <= 3
        }
        self.size = sum(len(t) for t in (*self._exact.values(), *self._perceptual.values()))
        self.categories = frozenset(category for lst in self.lists for category, _, _ in lst.meta)

    @classmethod
    def from_lists(cls, lists: Sequence[HashColumns], threshold: int = DEFAULT_THRESHOLD) -> HashIndex:
        return cls((), threshold, lists)

    def __len__(self) -> int:
        return self.size

    def _entry(self, table: _Table, i: int) -> HashEntry:
        return self.lists[int(table.source[i])].entry(table.kind, int(table.row[i]))

    def exact(self, kind: str, digest_hex: str) -> HashEntry | None:
        table = self._exact[kind]
        if not len(table):
            return None
        raw = bytes.fromhex(digest_hex)
        i = int(np.searchsorted(table.values, raw))
        if i < len(table) and bytes(table.values[i]) == raw.rstrip(b"\0"):
            return self._entry(table, i)
        return None

    def nearest(self, kind: str, value: int) -> tuple[HashEntry, int] | None:
        """Closest entry of one perceptual type within the threshold, with its distance."""
        table = self._perceptual[kind]
        if not len(table):
            return None
        mih = self._mih.get(kind)
        if mih is not None:
            found = mih.nearest(value, self.threshold)
            return None if found is None else (self._entry(table, found[0]), found[1])
        return self.scan(kind, value)

    def scan(self, kind: str, value: int) -> tuple[HashEntry, int] | None:
        """The same answer as :meth:`nearest` by a full vectorised scan (the baseline in the benchmark)."""
        table = self._perceptual[kind]
        if not len(table):
            return None
        distances = np.bitwise_count(table.values ^ np.uint64(value))
        best = int(np.argmin(distances))
        distance = int(distances[best])
        return (self._entry(table, best), distance) if distance <= self.threshold else None

    def match(self, hashes: ImageHashes) -> HashMatch | None:
        """The best match for one image: an exact digest first, else the closest perceptual hash."""
        for kind in EXACT_TYPES:
            entry = self.exact(kind, hashes.digest(kind))
            if entry is not None:
                return HashMatch(entry, 0)
        best: HashMatch | None = None
        for kind in PERCEPTUAL_TYPES:
            found = self.nearest(kind, int(hashes.digest(kind), 16))
            if found is not None and (best is None or found[1] < best.distance):
                best = HashMatch(found[0], found[1])
        return best

    # kept for the benchmark's older name
    nearest_perceptual = nearest


EMPTY_INDEX = HashIndex(())
