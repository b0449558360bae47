"""Scanner throughput: MB/s of ``scan_job`` over real HTML with the whole library (normalisation on).

    .venv/bin/python bench/bench_scanner.py [--library DIR] [--html-dir DIR ...] [--text-dir DIR]
                                            [--pages N] [--repeat N] [--gzip]

Pages: real HTML files found under ``--html-dir`` (default: documentation HTML on this machine) plus
news-like pages generated around the plain-text articles in ``--text-dir`` (default:
/work/shared/data/benign-dev; the texts are read, never copied). Each stage is timed on the same pages
in the same run, so the printed ratios hold even on a busy machine:

  baseline   selectolax (lexbor) parse + body text: the floor for any HTML scanner in Python
  extract    netmon.scan.extract.extract_body (charset, visible text, title, alt, inputs)
  scan_job   the whole job: decompress + extract + normalise + match (+ snapshot when hits)
  scan_job, without hyperscan: the same with the matcher's key pass on pyahocorasick alone (as on a
             machine where hyperscan does not import)

One core, CPU time (process_time), best of ``--repeat`` runs. Target: scan_job >= 50 MB/s of HTML.
"""

from __future__ import annotations

import argparse
import gzip
import html
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selectolax.lexbor import LexborHTMLParser  # noqa: E402

from netmon.scan import keyscan  # noqa: E402
from netmon.scan.extract import extract_body  # noqa: E402
from netmon.scan.findings import FlowContext  # noqa: E402
from netmon.scan.job import ScanJob, scan_job  # noqa: E402
from netmon.scan.library import load_library  # noqa: E402
from netmon.scan.matching import Matcher  # noqa: E402

DEFAULT_HTML_DIRS = [Path("/usr/share/doc"), Path.home() / ".rustup", ROOT / ".venv"]
DEFAULT_TEXT_DIR = Path("/work/shared/data/benign-dev")

_SCRIPT = (
    "window.__DATA__ = "
    + repr({f"k{i}": "v" * 40 for i in range(120)})
    + ";\n"
    + ("function f(a,b){return a&&b?a.map(function(x){return x*2}):null}\n" * 60)
)
_STYLE = ".nav{display:flex}.nav li{margin:0 4px}.article p{line-height:1.5}\n" * 40


def news_page(title: str, paragraphs: list[str], rng: random.Random) -> bytes:
    """A news-like page around real text: head, inline script and style, nav, article, sidebar."""
    nav = "".join(f'<li class="nav-item"><a href="/s/{i}">Section {i}</a></li>' for i in range(25))
    side = "".join(
        f'<li><a href="/a/{rng.randrange(10**6)}"><img src="/i/{i}.jpg" alt="Story {i}">'
        f"Related story {i}</a></li>"
        for i in range(15)
    )
    body = "\n".join(f'<p class="para">{html.escape(p)}</p>' for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><link rel="stylesheet" href="/s.css">'
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>"
        f'<header><nav><ul class="nav">{nav}</ul></nav><form action="/search"><input name="q" '
        f'placeholder="Search the site"></form></header><main><article><h1>{html.escape(title)}</h1>'
        f'<div class="byline">By a reporter</div>{body}</article><aside><ul>{side}</ul></aside></main>'
        f'<footer><p>Copyright</p><script src="/app.js"></script></footer></body></html>'
    ).encode()


def load_pages(html_dirs: list[Path], text_dir: Path, limit: int) -> list[bytes]:
    pages: list[bytes] = []
    for d in html_dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.rglob("*.html")):
            if len(pages) >= limit // 2:
                break
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if 8_000 <= len(data) <= 400_000:
                pages.append(data)
    rng = random.Random(1)
    texts = sorted(text_dir.glob("*.txt")) if text_dir.is_dir() else []
    for path in texts:
        if len(pages) >= limit:
            break
        paras = [
            p.strip() for p in path.read_text(encoding="utf-8", errors="replace").split("\n\n") if p.strip()
        ]
        if paras:
            pages.append(news_page(path.stem, paras, rng))
    return pages


def best_rate(pages: list[bytes], fn: Callable[[bytes], object], repeat: int) -> float:
    total = sum(map(len, pages))
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for page in pages:
            fn(page)
        best = min(best, time.process_time() - start)
    return total / best / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=ROOT / "library")
    ap.add_argument("--html-dir", type=Path, action="append")
    ap.add_argument("--text-dir", type=Path, default=DEFAULT_TEXT_DIR)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="also time gzip-encoded responses")
    args = ap.parse_args()

    pages = load_pages(args.html_dir or DEFAULT_HTML_DIRS, args.text_dir, args.pages)
    if not pages:
        sys.exit("no pages found: give --html-dir or --text-dir")
    t0 = time.perf_counter()
    library = load_library(args.library)
    matcher = Matcher.compile(library)
    compile_s = time.perf_counter() - t0
    total = sum(map(len, pages))
    print(f"pages: {len(pages)}, {total / 1e6:.1f} MB HTML, mean {total / len(pages) / 1e3:.0f} KB")
    print(f"library: {args.library} ({matcher.size} automaton keys, compiled in {compile_s:.2f} s)")

    ctx = FlowContext(time=0.0, client_ip="10.0.0.2", host="news.example", url="https://news.example/a")
    headers = (("Content-Type", "text/html; charset=utf-8"),)

    def baseline(page: bytes) -> object:
        tree = LexborHTMLParser(page)
        body = tree.body
        return body.text(separator="\n") if body is not None else ""

    def extract(page: bytes) -> object:
        return extract_body(page, "text/html; charset=utf-8")

    def job(page: bytes) -> object:
        return scan_job(
            ScanJob(
                ctx, request_url=ctx.url, response_status=200, response_headers=headers, response_body=page
            ),
            matcher,
        )

    texts = [extract(p).text for p in pages]  # type: ignore[attr-defined]
    text_mb = sum(len(t.encode()) for t in texts) / 1e6

    def match_only(_: bytes, it: list[int] = [0]) -> object:  # noqa: B006
        it[0] = (it[0] + 1) % len(texts)
        return matcher.scan(texts[it[0]])

    benign = [p for p in pages if not job(p).findings]  # type: ignore[attr-defined]
    hits = len(pages) - len(benign)
    rates = {
        "baseline (lexbor parse + text)": best_rate(pages, baseline, args.repeat),
        "extract (netmon.scan.extract)": best_rate(pages, extract, args.repeat),
        "match only (normalise + match)": best_rate(pages, match_only, args.repeat),
        "scan_job (whole job)": best_rate(pages, job, args.repeat),
    }
    if keyscan.hyperscan_available():
        # the same job with the key pass on pyahocorasick alone, as on a machine without hyperscan
        saved, keyscan._hs = keyscan._hs, None
        try:
            plain = Matcher.compile(library)
        finally:
            keyscan._hs = saved

        def job_plain(page: bytes) -> object:
            return scan_job(
                ScanJob(
                    ctx,
                    request_url=ctx.url,
                    response_status=200,
                    response_headers=headers,
                    response_body=page,
                ),
                plain,
            )

        rates["scan_job, without hyperscan"] = best_rate(pages, job_plain, args.repeat)
    if benign:
        # Most real traffic: no hit, so no explanation mapping and no snapshot.
        rates["scan_job, pages without hits"] = best_rate(benign, job, args.repeat)
    if args.gzip:
        zipped = [gzip.compress(p, 6) for p in pages]
        gz_headers = headers + (("Content-Encoding", "gzip"),)

        def job_gz(page: bytes) -> object:
            return scan_job(
                ScanJob(ctx, response_status=200, response_headers=gz_headers, response_body=page), matcher
            )

        rates["scan_job, gzip responses"] = (
            best_rate(zipped, job_gz, args.repeat) * total / sum(map(len, zipped))
        )
    print(f"extracted text: {text_mb:.1f} MB ({text_mb * 1e6 / total:.0%} of HTML); pages with hits: {hits}")
    print(f"MB/s of HTML, one core (CPU time, best of {args.repeat}):")
    base = rates["baseline (lexbor parse + text)"]
    for name, rate in rates.items():
        print(f"  {name:34s} {rate:7.1f} MB/s   {rate / base:5.2f} x baseline")
    verdict = "meets" if rates["scan_job (whole job)"] >= 50 else "BELOW"
    print(f"scan_job {verdict} the 50 MB/s target")


if __name__ == "__main__":
    main()
