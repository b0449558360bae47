"""Known-image lookups at 1,000,000 perceptual hashes, and images hashed per second, in one run.

    .venv/bin/python bench/bench_hashindex.py [--size 1000000] [--queries 300] [--images 200]

Lookup: a HashIndex with SIZE random 64-bit pHashes (plus SIZE md5 digests) parsed from a real CSV list
answers whole-image queries (exact digests first, then the nearest pHash within the threshold through
the multi-index), one core. Baselines measured in the same run: the numpy full scan, a plain Python loop
over the same hashes (``int.bit_count``) and an exact-digest set lookup.
Hashing: decode + digests + pHash/dHash of an 800x600 JPEG and PNG (netmon.lists.imagehashing.hash_image), on
one thread and on the ImageScanner's default two-thread pool. Target: < 5 ms per image lookup.
Nothing here is a test; the figures go in the README.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netmon.lists.hashindex import HashIndex  # noqa: E402
from netmon.lists.hashlists import load_hash_columns  # noqa: E402
from netmon.lists.imagehashing import ImageHashes, hash_image  # noqa: E402


def _picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(
        size, Image.Resampling.BICUBIC
    )


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(samples) * 1000:7.3f} ms   p99 {p99 * 1000:7.3f} ms"


def bench_lookup(size: int, queries: int) -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 2**63, size, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(
        rng.integers(0, 2, size, dtype=np.uint64)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-list.csv"
        with path.open("w") as fh:
            fh.write("type,hash,category,severity,source\n")
            for v in values.tolist():
                fh.write(f"phash,{v:016x},csam,5,bench\n")
            for _ in range(size):
                fh.write(f"md5,{os.urandom(16).hex()},csam,5,bench\n")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t1 = time.perf_counter()
        data = load_hash_columns(path)
        t2 = time.perf_counter()
        index = HashIndex.from_lists([data])
        t3 = time.perf_counter()
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    print(
        f"list: {size:,} pHashes + {size:,} md5 digests; parse {t2 - t1:.1f}s, index {t3 - t2:.2f}s, "
        f"peak memory +{grown:.0f} MB"
    )
    md5s = data.columns["md5"].values
    # queries: half near-duplicates of stored hashes (3 bits flipped), half random (misses)
    picks = rng.integers(0, size, queries)
    wanted: list[int] = []
    for n, i in enumerate(picks):
        v = int(values[i])
        if n % 2 == 0:
            for bit in rng.choice(64, 3, replace=False):
                v ^= 1 << int(bit)
        else:
            v = int(rng.integers(0, 2**63)) * 2
        wanted.append(v)
    images = [
        ImageHashes(
            sha256="0" * 64,
            sha1="0" * 40,
            md5=os.urandom(16).hex(),
            phash=f"{q:016x}",
            dhash=f"{q:016x}",
            bytes=0,
            width=0,
            height=0,
        )
        for q in wanted
    ]
    index.match(images[0])  # warm up
    times: list[float] = []
    hits = 0
    for img in images:
        start = time.perf_counter()
        found = index.match(img)
        times.append(time.perf_counter() - start)
        hits += found is not None
    print(
        f"netmon HashIndex.match (exact + pHash + dHash), per image: {_ms(times)}   "
        f"({hits}/{len(images)} matched; expected {len(images) // 2})"
    )
    phash_only: list[float] = []
    for q in wanted:
        start = time.perf_counter()
        index.nearest("phash", q)
        phash_only.append(time.perf_counter() - start)
    print(f"netmon pHash nearest at {size:,} (multi-index), per query:            {_ms(phash_only)}")
    scan_times: list[float] = []
    for q in wanted:
        start = time.perf_counter()
        index.scan("phash", q)
        scan_times.append(time.perf_counter() - start)
    print(f"baseline: numpy full scan (bitwise_count) at {size:,}, per query: {_ms(scan_times)}")
    agree = sum(
        (a is None and b is None) or (a is not None and b is not None and a[1] == b[1])
        for a, b in ((index.nearest("phash", q), index.scan("phash", q)) for q in wanted)
    )
    print(f"multi-index and scan agree on {agree}/{len(wanted)} queries")
    as_ints = values.tolist()
    loop_times: list[float] = []
    for q in wanted[: max(3, queries // 30)]:
        start = time.perf_counter()
        best = min(range(len(as_ints)), key=lambda i, q=q: (as_ints[i] ^ q).bit_count())
        loop_times.append(time.perf_counter() - start)
        del best
    print(f"baseline: plain Python loop over {size:,} ints, per query:   {_ms(loop_times)}")
    digests = {bytes(v).hex() for v in md5s}
    probe = [img.md5 for img in images]
    start = time.perf_counter()
    for _ in range(100):
        for d in probe:
            _ = d in digests
    exact = (time.perf_counter() - start) / (100 * len(probe))
    print(f"baseline: exact md5 set lookup at {size:,}, per query:    {exact * 1e6:.3f} us")
    speedup = statistics.median(loop_times) / statistics.median(phash_only)
    over_scan = statistics.median(scan_times) / statistics.median(phash_only)
    verdict = "PASS" if statistics.median(times) < 0.005 else "FAIL"
    print(
        f"=> multi-index is {over_scan:.1f}x the numpy scan and {speedup:,.0f}x the Python loop; "
        f"target < 5 ms per image: {verdict}"
    )


def bench_hashing(count: int) -> None:
    samples = {
        "JPEG 800x600": [_encode(_picture(s), "JPEG") for s in range(8)],
        "PNG 800x600": [_encode(_picture(s), "PNG") for s in range(8)],
    }
    hash_image(samples["JPEG 800x600"][0])  # import/warm-up
    for label, blobs in samples.items():
        start = time.perf_counter()
        for i in range(count):
            hash_image(blobs[i % len(blobs)])
        one = count / (time.perf_counter() - start)
        with ThreadPoolExecutor(2) as pool:
            start = time.perf_counter()
            list(pool.map(hash_image, (blobs[i % len(blobs)] for i in range(count))))
            two = count / (time.perf_counter() - start)
        kb = statistics.mean(len(b) for b in blobs) / 1024
        print(
            f"hash_image {label} (~{kb:.0f} KB): {one:6.0f} images/s one thread, {two:6.0f} images/s "
            f"with 2 threads"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    bench_lookup(args.size, args.queries)
    bench_hashing(args.images)


if __name__ == "__main__":
    main()
