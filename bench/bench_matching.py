"""Scanner throughput: netmon's normalise + scan versus a bare pyahocorasick baseline.

    .venv/bin/python bench/bench_matching.py [--library DIR] [--data DIR] [--repeat N]

Reads the benign web text of ``../shared/data/benign-dev`` (never copied into the repository) and the
default library (or a synthetic library of a few thousand phrases when there is none). Prints MB/s of
CPU time (best of N runs) for:

- baseline: ``str.lower()`` + a bare ``Automaton.iter()`` over the same phrases padded with spaces;
- normalise: ``netmon.scan.normalise.normalise`` alone;
- scan: ``Matcher.scan`` (normalisation, matching, rules, offsets mapped back for every hit), and
  the same with the key pass on pyahocorasick alone (as where hyperscan does not import);

and the ratio scan/baseline. This is a benchmark, not a test: figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ahocorasick

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netmon.config import paths  # noqa: E402
from netmon.scan import keyscan  # noqa: E402
from netmon.scan.library import Library, check_paths, load_library  # noqa: E402
from netmon.scan.matching import Matcher  # noqa: E402
from netmon.scan.normalise import normalise  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benign-dev"


def synthetic_library(tmp: Path, phrases: int = 3000) -> Library:
    """A library of invented multi-letter phrases (most never occur in real text) plus a few common words."""
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    (tmp / "en").mkdir(parents=True, exist_ok=True)
    (tmp / "categories.txt").write_text("synthetic | Synthetic | generated for the benchmark\n")
    lines = ["@category synthetic", "@language en"]
    seen: set[str] = set()
    while len(seen) < phrases:
        words = [
            "".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(rng.randint(1, 3))
        ]
        seen.add(" ".join(words))
    lines += [f"{p} | {rng.randint(1, 5)}" for p in sorted(seen)]
    lines += [f"{w} | 1" for w in ("gun", "drugs", "violence", "kill")]
    (tmp / "en" / "synthetic.txt").write_text("\n".join(lines) + "\n")
    return load_library(tmp)


def lenient_library(root: Path) -> Library:
    """The library with its errors ignored (lines with errors are left out), for work in progress."""
    from netmon.scan.library import _build, _Sink

    for problem in check_paths([root]).errors:
        print(f"ignored: {problem}", file=sys.stderr)
    library = _build(root, None, _Sink(strict=False))[0]
    assert library is not None
    return library


def best_of(repeat: int, docs: list[str], func: Callable[[str], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for doc in docs:
            func(doc)
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, default=paths.DEFAULT_LIBRARY_DIR)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lenient", action="store_true", help="report library errors and go on")
    parser.add_argument("--times", type=int, default=3, help="concatenate the corpus this many times")
    args = parser.parse_args()

    docs = [p.read_text(encoding="utf-8") for p in sorted(args.data.glob("*.txt"))] * args.times
    if not docs:
        sys.exit(f"no *.txt files in {args.data}")
    size = sum(len(d.encode("utf-8")) for d in docs) / 1e6

    if (args.library / "categories.txt").is_file():
        library = load_library(args.library) if not args.lenient else lenient_library(args.library)
        label = str(args.library)
    else:
        import tempfile

        library = synthetic_library(Path(tempfile.mkdtemp()))
        label = "synthetic"
    t0 = time.perf_counter()
    matcher = Matcher.compile(library)
    compile_s = time.perf_counter() - t0

    bare = ahocorasick.Automaton()
    for n, entry in enumerate(library.entries):
        bare.add_word(f" {entry.normalised} ", n)
    bare.make_automaton()

    def baseline(doc: str) -> object:
        return list(bare.iter(doc.lower()))

    plain = None
    if keyscan.hyperscan_available():  # the key pass on pyahocorasick alone, as without hyperscan
        saved, keyscan._hs = keyscan._hs, None
        try:
            plain = Matcher.compile(library)
        finally:
            keyscan._hs = saved
    hits = sum(len(matcher.scan(d)) for d in docs)
    base_s = best_of(args.repeat, docs, baseline)
    norm_s = best_of(args.repeat, docs, normalise)
    scan_s = best_of(args.repeat, docs, matcher.scan)
    print(
        f"library {label}: {len(library.entries)} phrases, {matcher.size} automaton keys, "
        f"compiled in {compile_s:.2f} s"
    )
    print(f"text: {len(docs)} documents, {size:.1f} MB (UTF-8); {hits} hits")
    print(f"baseline  lower() + bare iter()     {size / base_s:7.1f} MB/s")
    print(f"netmon    normalise()               {size / norm_s:7.1f} MB/s")
    print(f"netmon    normalise() + scan()      {size / scan_s:7.1f} MB/s")
    print(f"ratio     scan / baseline           {base_s / scan_s:7.2f}")
    if plain is not None:
        plain_s = best_of(args.repeat, docs, plain.scan)
        print(f"netmon    scan(), without hyperscan {size / plain_s:7.1f} MB/s")


if __name__ == "__main__":
    main()
