"""What the intent grammar costs on short typed texts: ``Matcher.scan`` with and without the grammar.

    .venv/bin/python bench/bench_grammar.py [--library DIR] [--data DIR] [--repeat N]

The grammar only reads what a pupil typed (searches, form fields, chat and AI prompts, sent messages),
so the texts are short: the sentences (3-40 words) of the benign web text in ``../shared/data/benign-dev``
(never copied into the repository), plus the messages of ``tests/eval/*.jsonl``. Prints short texts per
second of CPU time (best of N runs) for the phrase scan alone (``grammar=False``, the baseline, measured
in the same run) and for the phrase scan with the grammar, and the ratio. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netmon.config import paths  # noqa: E402
from netmon.scan.library import load_library  # noqa: E402
from netmon.scan.matching import Matcher  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benign-dev"


def texts(data: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(p for p in data.rglob("*") if p.is_file()) if data.is_dir() else []:
        body = path.read_text(encoding="utf-8", errors="replace")
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", body) if 3 <= len(s.split()) <= 40]
    for path in sorted((ROOT / "tests" / "eval").glob("*.jsonl")):
        out += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    return out


def rate(matcher: Matcher, items: list[str], grammar: bool, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.process_time()
        for text in items:
            matcher.scan(text, grammar=grammar)
        best = max(best, len(items) / max(time.process_time() - start, 1e-9))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, default=paths.DEFAULT_LIBRARY_DIR)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    matcher = Matcher.compile(load_library(args.library))
    items = texts(args.data)
    base = rate(matcher, items, False, args.repeat)
    with_grammar = rate(matcher, items, True, args.repeat)
    print(f"{len(items)} short texts, {len(matcher.library.grammar.rules)} grammar rules")
    print(f"phrases only (baseline): {base:,.0f} texts/s")
    print(f"phrases + grammar:       {with_grammar:,.0f} texts/s")
    print(f"ratio grammar/baseline:  {with_grammar / base:.2f}")


if __name__ == "__main__":
    main()
