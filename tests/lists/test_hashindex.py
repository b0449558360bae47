"""The multi-index gives exactly the scan's answer (distance), for every threshold it is used at."""

from __future__ import annotations

import numpy as np
import pytest

from netmon.lists.hashindex import MIH_MIN_SIZE, HashIndex
from netmon.lists.hashlists import Column as ListColumn
from netmon.lists.hashlists import HashColumns


def _index(values: np.ndarray, threshold: int) -> HashIndex:
    n = len(values)
    column = ListColumn(values, np.zeros(n, dtype=np.uint32), np.arange(2, n + 2, dtype=np.uint32))
    data = HashColumns("mem.csv", (("csam", 5, "test"),), {"phash": column})
    return HashIndex.from_lists([data], threshold)


@pytest.mark.parametrize("threshold", [0, 3, 4, 8, 10, 15])
def test_multi_index_agrees_with_scan(threshold: int) -> None:
    rng = np.random.default_rng(threshold)
    values = rng.integers(0, 2**63, MIH_MIN_SIZE * 2, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    index = _index(values, threshold)
    assert index._mih, "the multi-index must be in use at this size"
    for i in range(300):
        q = int(values[int(rng.integers(0, len(values)))])
        if i % 3 == 0:
            q = int(rng.integers(0, 2**63)) * 2
        else:
            for bit in rng.choice(64, int(rng.integers(0, threshold + 3)), replace=False):
                q ^= 1 << int(bit)
        fast = index.nearest("phash", q)
        slow = index.scan("phash", q)
        assert (fast is None) == (slow is None)
        if fast is not None and slow is not None:
            assert fast[1] == slow[1] <= threshold
            assert (int(fast[0].hash, 16) ^ q).bit_count() == fast[1]


def test_lines_survive_the_multi_index() -> None:
    values = np.arange(1, MIH_MIN_SIZE + 10, dtype=np.uint64) << np.uint64(20)
    index = _index(values, 8)
    found = index.nearest("phash", int(values[1234]) ^ 0b101)
    assert found is not None and found[0].line == 1234 + 2 and found[1] == 2
