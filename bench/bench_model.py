"""Risk model throughput on short texts, against the phrase matcher on the same texts in the same run.

    .venv/bin/python bench/bench_model.py [--data DIR] [--repeat N] [--batch N]

Texts: the evaluation messages (tests/eval concerning + traps, bench/model_eval_fresh.jsonl) and the
sentences of the benign-dev pages (``../shared/data/benign-dev``, read in place): a few thousand short
texts of 1-60 words. One process, one thread, CPU time (``time.process_time``), best of N. Prints texts/s
per core for:

- baseline ``normalise()`` alone and ``Matcher.scan()`` (normalise + phrase matching) per text;
- ``RiskModel.score_batch`` in batches of ``--batch`` texts, with a warm token cache and a cold one;
- ``RiskModel.score`` one text at a time;

and each model figure as a ratio of the matcher's. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netmon.config import paths  # noqa: E402
from netmon.scan.model import RiskModel  # noqa: E402
from netmon.scan.normalise import normalise  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benign-dev"


def load_texts(data: Path) -> list[str]:
    texts: list[str] = []
    for name in ("tests/eval/concerning.jsonl", "tests/eval/traps.jsonl", "bench/model_eval_fresh.jsonl"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(str(json.loads(line)["text"]))
    for page in sorted(data.glob("*.txt")):
        flat = " ".join(page.read_text(encoding="utf-8", errors="replace").split())
        texts.extend(s for s in re.split(r"(?<=[.!?])\s+", flat) if 1 <= len(s.split()) <= 60)
    return texts


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    texts = load_texts(args.data)
    n = len(texts)
    words = sum(len(t.split()) for t in texts) / n
    model = RiskModel.load()
    batches = [texts[i : i + args.batch] for i in range(0, n, args.batch)]

    def per_text(func: Callable[[str], object]) -> Callable[[], object]:
        return lambda: [func(t) for t in texts]

    def batched() -> object:
        return [model.score_batch(b) for b in batches]

    def batched_cold() -> object:
        model.featuriser._cache.clear()  # type: ignore[attr-defined]
        return batched()

    rows: list[tuple[str, float]] = [("normalise() alone", best_of(args.repeat, per_text(normalise)))]
    matcher_s: float | None = None
    try:
        from netmon.scan.library import load_library
        from netmon.scan.matching import Matcher

        matcher = Matcher.compile(load_library(paths.DEFAULT_LIBRARY_DIR))
        matcher_s = best_of(args.repeat, per_text(matcher.scan))
        rows.append(("Matcher.scan() (library)", matcher_s))
    except Exception as exc:  # noqa: BLE001 - a library being edited must not stop the model's bench
        print(f"matcher baseline skipped: {exc}", file=sys.stderr)
    model_rows = [
        (f"model score_batch({args.batch}) warm", best_of(args.repeat, batched)),
        (f"model score_batch({args.batch}) cold", best_of(args.repeat, batched_cold)),
        ("model score() one by one", best_of(args.repeat, per_text(model.score))),
    ]
    print(f"{n} short texts, {words:.1f} words on average; one core, CPU time, best of {args.repeat}")
    for label, secs in rows + model_rows:
        ratio = f"   x{matcher_s / secs:5.2f} of matcher" if matcher_s and (label, secs) in model_rows else ""
        print(f"{label:34} {n / secs:9.0f} texts/s{ratio}")


if __name__ == "__main__":
    main()
