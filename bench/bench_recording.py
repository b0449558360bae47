"""Recording in the proxy: CPU ms per scan result through ``IncidentWriter`` into a temporary SQLite.

Builds realistic scan results once (``netmon.scan.job.scan_job`` over news-style pages made from the
benign-dev texts, the proxy's usual pages with mostly severity-1 topic words, plus a few searches with
high-severity hits and one page with a NUL in its text), gives them pupils, URLs and times so that some
repeat within the de-duplication window, then times, in CPU seconds of this process (the writer thread
included, as in the proxy) and best of ``--repeat``:

  baseline   one bare ``sqlite3`` INSERT of the result's main columns per result (executemany, one
             transaction per batch): the floor of storing anything at all
  build      ``netmon.incidents.decisions.build`` alone (no store)
  writer     ``IncidentWriter``: submit every result, flush (build, de-duplication, inserts, merges),
             wired as the proxy wires it: the policy's hit filter (behind ``addons.recorder``'s) and the
             alert rules (``RuleEngine``) of
             ``--policy`` (the repository's default policy; ``--policy none`` for the writer alone)

and prints ms per result and each one's ratio to the baseline. Absolute figures move with the machine's
load; the ratio is the figure to compare between versions of the code.

    .venv/bin/python bench/bench_recording.py            # --pages N, --results N, --batch N, --repeat N
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_scanner import news_page  # noqa: E402
from netmon_proxy.recorder import IncidentRecorder  # noqa: E402

from netmon.alerts.rules import RuleEngine  # noqa: E402
from netmon.config.policy import Policy, hit_filter, load_policy  # noqa: E402
from netmon.incidents import decisions  # noqa: E402
from netmon.incidents.writer import IncidentWriter  # noqa: E402
from netmon.scan.findings import FlowContext, ScanResult, TextFinding  # noqa: E402
from netmon.scan.job import ScanJob, scan_job  # noqa: E402
from netmon.scan.library import load_library  # noqa: E402
from netmon.scan.matching import Matcher  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "benign-dev"
SEARCHES = [
    "how to kill myself",
    "best way to self harm without anyone knowing",
    "where to buy a knife near school",
    "i want to die tonight",
]
HTML = (("Content-Type", "text/html; charset=utf-8"),)


def scanned(matcher: Matcher, data: Path, pages: int) -> list[tuple[str, ScanResult]]:
    """(kind, result with hits) for the benign-dev pages, a few high-severity searches and a NUL page."""
    rng = random.Random(7)
    out: list[tuple[str, ScanResult]] = []
    ctx = FlowContext(time=0.0, client_ip="10.0.0.2", host="news.example", url="https://news.example/a")
    for path in sorted(data.glob("*.txt"))[:pages]:
        paras = [p.strip() for p in path.read_text(encoding="utf-8", errors="replace").split("\n\n")]
        page = news_page(path.stem, [p for p in paras if p], rng)
        job = ScanJob(ctx, request_url=ctx.url, response_status=200, response_headers=HTML)
        result = scan_job(dataclasses.replace(job, response_body=page), matcher)
        if result.findings:
            out.append(("page", result))
    for q in SEARCHES:
        url = "https://www.google.com/search?q=" + q.replace(" ", "+")
        c = FlowContext(time=0.0, client_ip="10.0.0.2", host="www.google.com", url=url)
        result = scan_job(ScanJob(c, request_url=url), matcher)
        if result.findings:
            out.append(("search", result))
    if out:  # one page whose captured text holds a NUL (stored as U+FFFD)
        first = next(r for kind, r in out if kind == "page")
        f = first.findings[0]
        nul = TextFinding(f.source, f.text[:200] + "\x00" + f.text[200:], f.hits, f.label)
        out.append(("nul", ScanResult(first.context, (nul, *first.findings[1:]), first.stats)))
    return out


def traffic(base: list[tuple[str, ScanResult]], n: int) -> list[ScanResult]:
    """``n`` results from 40 pupils, 1.5 s apart; about one in five repeats a page a pupil saw lately."""
    rng = random.Random(11)
    t0 = time.time() - 3600
    out: list[ScanResult] = []
    for i in range(n):
        pupil = rng.randrange(40)
        page = rng.randrange(4) if rng.random() < 0.2 else 100 + i
        kind, r = base[page if page < 4 else rng.randrange(len(base))]  # a repeat: the same page again
        c = r.context
        ctx = FlowContext(
            time=t0 + 1.5 * i, client_ip=f"10.0.{pupil // 250}.{pupil % 250 + 2}", host=c.host,
            url=c.url if kind == "search" else f"https://{c.host}/story/{page}",
            user=f"pupil{pupil}", role="student", year_group="Year 9", groups=("Year 9", "Students"),
            device="Chrome/Windows",
        )  # fmt: skip
        out.append(ScanResult(ctx, r.findings, r.stats, r.snapshot, r.snapshot_type, dict(r.evidence)))
    return out


def bare_sqlite(results: list[ScanResult], batch: int) -> float:
    """CPU seconds for one plain INSERT per result into a fresh SQLite file."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "bare.db")
        db.execute(
            "CREATE TABLE incidents (id INTEGER PRIMARY KEY, time TEXT, user TEXT, url TEXT, phrase TEXT,"
            " phrases TEXT, capture_text TEXT, snapshot BLOB)"
        )
        start = time.process_time()
        for at in range(0, len(results), batch):
            rows = []
            for r in results[at : at + batch]:
                hit = r.findings[0].hits[0]
                text = "\n".join(f.text for f in r.findings)
                rows.append(
                    (str(r.context.time), r.context.user, r.context.url, hit.phrase, json.dumps([hit.phrase]),
                     text, r.snapshot)
                )  # fmt: skip
            with db:
                db.executemany(
                    "INSERT INTO incidents (time, user, url, phrase, phrases, capture_text, snapshot)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        spent = time.process_time() - start
        db.close()
    return spent


def build_only(results: list[ScanResult]) -> float:
    start = time.process_time()
    for r in results:
        decisions.build(r)
    return time.process_time() - start


def writer(results: list[ScanResult], batch: int, policy: Policy | None) -> tuple[float, int, int]:
    """CPU seconds of submit + flush through IncidentWriter; (seconds, incident rows, total count)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/netmon.db"
        wiring: dict[str, Any] = {}
        if policy is not None:
            recorder = IncidentRecorder()  # the proxy's wiring: the policy's filter behind the recorder's
            recorder.hit_filters.append(hit_filter(policy))
            wiring = {"hit_filter": recorder._filter, "after_batch": (RuleEngine(policy, webhook_url=""),)}
        w = IncidentWriter(url, spill_dir=Path(tmp), batch_size=batch, linger=0.05, **wiring)
        w.flush(10)
        start = time.process_time()
        for r in results:
            w.submit(r)
        if not w.flush(120):
            sys.exit("writer did not finish")
        spent = time.process_time() - start
        w.close()
        db = sqlite3.connect(f"{tmp}/netmon.db")
        rows, total = db.execute("SELECT count(*), sum(count) FROM incidents").fetchone()
        db.close()
    return spent, rows, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=ROOT / "library")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--pages", type=int, default=98, help="benign-dev texts to scan")
    ap.add_argument("--results", type=int, default=1500, help="results to record per round")
    ap.add_argument("--batch", type=int, default=32, help="the writer's batch size")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--policy", default=str(ROOT / "policy"), help="policy directory, or none")
    args = ap.parse_args()
    policy = None if args.policy == "none" else load_policy(args.policy, env={}, library_dir=args.library)

    matcher = Matcher.compile(load_library(args.library))
    base = scanned(matcher, args.data, args.pages)
    if not base:
        sys.exit(f"no results with hits from {args.data}")
    kinds = {k: sum(1 for kk, _ in base if kk == k) for k in ("page", "search", "nul")}
    results = traffic(base, args.results)
    hits = sum(len(f.hits) for r in results for f in r.findings) / len(results)
    print(f"{len(base)} distinct results with hits ({kinds}); {len(results)} recorded per round, "
          f"{hits:.1f} hits each on average; batches of {args.batch}")  # fmt: skip

    timings: dict[str, float] = {"baseline": float("inf"), "build": float("inf"), "writer": float("inf")}
    rows = total = 0
    for _ in range(args.repeat):
        timings["baseline"] = min(timings["baseline"], bare_sqlite(results, args.batch))
        timings["build"] = min(timings["build"], build_only(results))
        spent, rows, total = writer(results, args.batch, policy)
        timings["writer"] = min(timings["writer"], spent)
    print(f"stored: {rows} incidents holding {total} results; policy: {args.policy}")
    base_ms = timings["baseline"] / len(results) * 1e3
    labels = {
        "baseline": "baseline: bare sqlite3 INSERT",
        "build": "decisions.build alone",
        "writer": "IncidentWriter (submit + flush)",
    }
    for key, label in labels.items():
        ms = timings[key] / len(results) * 1e3
        print(f"{label:<34} {ms:7.3f} ms/result  x{ms / base_ms:5.1f}")


if __name__ == "__main__":
    main()
