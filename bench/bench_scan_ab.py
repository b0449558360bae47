"""The scan alone, two versions of netmon side by side in one run: CPU ms per page of each, and B/A.

    .venv/bin/python bench/bench_scan_ab.py --a TREE_A --b TREE_B [--rounds 15] [--library DIR]
    .venv/bin/python bench/bench_scan_ab.py --a TREE_A --b TREE_B --check   # same results, no timing

``TREE_A`` and ``TREE_B`` are source trees of netmon (e.g. ``git archive COMMIT | tar -x -C DIR``; the
working tree itself is a tree too). Each runs in its own child process that imports its tree's
``netmon`` (``PYTHONPATH``), compiles the same library (``--library``, default this checkout's) and
builds the same pages: the proxy bench's mix (136 distinct real pages, ``bench_proxy.mix_pages``) and
its large page. Round after round each child runs ``scan_job`` over every page, in turn, the order
rotated each round, so the machine's other load falls on both alike. Prints each child's median and
best CPU ms per page (mix, large page) and the median of the rounds' B/A ratios with their range.

``--check`` compares instead what both trees' ``scan_job`` return (findings with every hit, stats and
snapshot bytes) on the mix pages, the large page, and every text of ``tests/eval/*.jsonl`` as a search,
as a form post and inside a page: it prints the number of jobs and of differences (exit 1 if any).
Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import sys, time, pickle
sys.path.insert(1, {bench!r})
from pathlib import Path
from bench_scan_ab import jobs_for
from netmon.scan.job import scan_job
from netmon.scan.library import load_library
from netmon.scan.matching import Matcher
import netmon
assert netmon.__file__.startswith({tree!r}), netmon.__file__
matcher = Matcher.compile(load_library(Path({library!r})))
sets = jobs_for({what!r}, {texts!r})
out = sys.stdout.buffer
out.write(b"ready\\n"); out.flush()
for line in sys.stdin:
    if line.strip() == "check":
        results = [[scan_job(job, matcher) for job in jobs] for jobs in sets.values()]
        data = pickle.dumps([[(r.findings, r.stats, r.snapshot, r.snapshot_type) for r in rs]
                             for rs in results])
        out.write(str(len(data)).encode() + b"\\n" + data); out.flush()
        continue
    times = []
    for jobs in sets.values():
        begin = time.process_time()
        for job in jobs:
            scan_job(job, matcher)
        times.append((time.process_time() - begin) / len(jobs))
    out.write((" ".join(f"{{t:.9f}}" for t in times) + "\\n").encode()); out.flush()
"""


def eval_texts() -> list[str]:
    """Every text of ``tests/eval/*.jsonl``."""
    texts = []
    for path in sorted((ROOT / "tests" / "eval").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def jobs_for(what: str, texts_file: str = "") -> dict[str, list]:
    """The jobs of each set: ``time`` the mix and the large page; ``check`` those and the texts in
    ``texts_file`` (JSON, read once by the parent so that both children get the same)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_proxy as bp

    from netmon.scan.findings import FlowContext
    from netmon.scan.job import ScanJob

    ctx = FlowContext(
        time=0.0, client_ip="10.0.0.2", host="news.example.org", url="http://news.example.org/a"
    )
    html = (("content-type", "text/html; charset=utf-8"),)

    def page(body: bytes) -> ScanJob:
        return ScanJob.for_http(ctx, response_status=200, response_headers=html, response_body=body)

    sets = {"mix": [page(p) for p in bp.mix_pages()], "large": [page(bp.large_page())]}
    if what == "check":
        texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
        search, form, inside = [], [], []
        form_type = (("content-type", "application/x-www-form-urlencoded"),)
        for text in texts:
            url = "https://www.google.com/search?q=" + quote_plus(text)
            search.append(
                ScanJob.for_http(FlowContext(time=0.0, client_ip="10.0.0.2", host="www.google.com", url=url))
            )
            form.append(
                ScanJob.for_http(
                    ctx, request_headers=form_type, request_body=b"message=" + quote_plus(text).encode()
                )
            )
            inside.append(page(bp.benign_page(size=6_000, paragraphs=bp._html_paragraphs(text))))
        sets.update(search=search, form=form, inside=inside)
    return sets


def start(tree: Path, library: Path, what: str, texts: str) -> subprocess.Popen[bytes]:
    code = _CHILD.format(
        bench=str(ROOT / "bench"), tree=str(tree.resolve()), library=str(library), what=what, texts=texts
    )
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/"
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def ask(child: subprocess.Popen[bytes], command: str) -> bytes:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(command.encode() + b"\n")
    child.stdin.flush()
    line = child.stdout.readline()
    if command == "check":
        return child.stdout.read(int(line))
    return line


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", type=Path, required=True, help="the baseline tree")
    parser.add_argument("--b", type=Path, required=True, help="the tree measured against it")
    parser.add_argument("--library", type=Path, default=ROOT / "library")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--check", action="store_true", help="compare results instead of timing")
    args = parser.parse_args()
    what = "check" if args.check else "time"
    texts = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    with texts:
        json.dump(eval_texts() if args.check else [], texts)
    children = {
        name: start(tree, args.library, what, texts.name) for name, tree in (("A", args.a), ("B", args.b))
    }
    try:
        if args.check:
            # our own children's answers (this bench's pickles, never captured traffic)
            got = {name: pickle.loads(ask(child, "check")) for name, child in children.items()}  # noqa: S301
            jobs = sum(len(rs) for rs in got["A"])
            differ = sum(
                a != b
                for rs_a, rs_b in zip(got["A"], got["B"], strict=True)
                for a, b in zip(rs_a, rs_b, strict=True)
            )
            with_hits = sum(bool(r[0]) for rs in got["A"] for r in rs)
            print(f"{jobs} jobs ({with_hits} with hits in A), {differ} results differ")
            return 1 if differ else 0
        times: dict[str, list[list[float]]] = {"A": [], "B": []}
        ask(children["A"], "time")  # warm both
        ask(children["B"], "time")
        for r in range(args.rounds):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name in order:
                times[name].append([float(x) for x in ask(children[name], "time").split()])
        for k, label in enumerate(("mix page", "large page")):
            a = [t[k] * 1000 for t in times["A"]]
            b = [t[k] * 1000 for t in times["B"]]
            ratios = [y / x for x, y in zip(a, b, strict=True)]
            print(
                f"{label:10s}  A {statistics.median(a):.3f} ms (best {min(a):.3f})  "
                f"B {statistics.median(b):.3f} ms (best {min(b):.3f})  "
                f"B/A {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}), "
                f"{args.rounds} rounds"
            )
        return 0
    finally:
        for child in children.values():
            child.kill()
            child.wait()
        os.unlink(texts.name)


if __name__ == "__main__":
    sys.exit(main())
