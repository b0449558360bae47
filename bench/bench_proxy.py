"""Throughput and latency through bare mitmdump and through netmon, side by side, in one run.

    ./dev bench            (or: .venv/bin/python bench/bench_proxy.py [--seconds 10] [--connections 32])

Upstream is nginx on loopback serving, by default, the mix (136 distinct real pages of every size,
3-160 KB, requested in turn so no two bodies in a row are the same) and one large real page (130 KB);
also on request a 50 KB page with no match, the same with library matches, and a 50 KB page that is
nearly all text (the scanner's worst case); the load
is wrk (Debian packages `wrk`, `nginx-light`). For each of HTTP (explicit proxy, keep-alive) and HTTPS
(keep-alive; mitmproxy in reverse mode so that wrk can speak TLS to it) it prints requests/s and p50/p99
latency for bare mitmdump and for netmon, and the netmon/bare ratio. After the netmon runs it reads
netmon's own counters to show that the scanner kept up (no page skipped), and the CPU time per request
of bare mitmdump, of netmon's proxy processes and of its scan workers (read from /proc around each run,
the scan's backlog included): on a machine shared with other work these move far less than requests/s.
Each is measured with 1 and 2 proxy processes (``--workers 1 2``): bare runs that many mitmdump
processes, netmon ``netmon run --workers N``, one wrk per port. Nothing here is a test: the figures
go in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
BENIGN_DIR = REPO.parent / "shared" / "data" / "benign-dev"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} not listening")


def quiet_texts() -> list[str]:
    """Real article texts from ../shared/data/benign-dev in which the library finds nothing at all."""
    from netmon.config.paths import DEFAULT_LIBRARY_DIR
    from netmon.scan.library import load_library
    from netmon.scan.matching import Matcher

    if not BENIGN_DIR.is_dir():
        return []
    matcher = Matcher.compile(load_library(DEFAULT_LIBRARY_DIR))
    texts = (p.read_text(errors="replace") for p in sorted(BENIGN_DIR.glob("*.txt")))
    return [t for t in texts if not matcher.scan(t)]


def _paragraphs(size: int) -> list[str]:
    """About ``size`` characters of real article text with no library match, in paragraphs."""
    words = " ".join(quiet_texts()) or ("The water cycle moves water. " * 4000)
    paragraphs, total = [], 0
    for chunk in re.findall(r".{1,400}(?:\s|$)", words, flags=re.S):
        paragraphs.append(chunk.replace("&", "&amp;").replace("<", "&lt;"))
        total += len(chunk)
        if total >= size:
            break
    return paragraphs


def dense_page(size: int = 50_000) -> bytes:
    """The worst case: ~50 KB of which nearly all is visible article text (95%)."""
    head = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Article</title>"
        "<script>window.analytics=[];</script><style>p{margin:1em}</style></head><body>"
    )
    body = "".join(f"<p>{p}</p>\n" for p in _paragraphs(size - 1300))
    return (head + body + "</body></html>").encode()


def benign_page(size: int = 50_000, text: int = 10_000, paragraphs: list[str] | None = None) -> bytes:
    """A 50 KB news article page shaped like real ones: meta tags, inline CSS, an inline JSON state
    script, navigation, ~10 KB of real article text (20% of the page: the median of 130 real news
    pages in mozilla/readability's test set is 13%), a related-stories sidebar and a footer.
    ``paragraphs`` gives the article text instead (then ``text`` is unused)."""
    meta = "".join(
        f'<meta property="og:{k}" content="{k} of the article, for sharing">'
        for k in ("title", "description", "site_name", "type", "url", "image", "locale")
    ) + "".join(f'<link rel="preload" href="/static/font-{i}.woff2" as="font" crossorigin>' for i in range(6))
    css = "".join(
        f".c{i}{{margin:{i % 7}px {i % 5}px;padding:0 {i % 3}em;color:#{i * 2654435761 % 0xFFFFFF:06x};"
        f"font:400 {12 + i % 6}px/1.4 system-ui,sans-serif}}\n"
        for i in range(110)
    )
    state = (
        "window.__STATE__="
        + json.dumps(
            {
                "page": {"id": 48213, "section": "news", "tags": [f"tag-{i}" for i in range(30)]},
                "ads": [
                    {"slot": f"slot-{i}", "sizes": [[300, 250], [728, 90]], "targeting": {"pos": i}}
                    for i in range(40)
                ],
                "tracking": {f"k{i}": f"{i * 7919:x}-{i * 104729:x}" for i in range(120)},
            }
        )
        + ";"
    )
    nav = "".join(
        f'<li class="nav__item c{i}"><a class="nav__link" href="/section/{i}/">Section {i}</a></li>'
        for i in range(40)
    )
    article = "".join(
        f'<p class="article__para c{i % 110}">{p}</p>\n'
        for i, p in enumerate(paragraphs if paragraphs is not None else _paragraphs(text))
    )
    related = "".join(
        f'<li class="related__item"><a href="/news/{1000 + i}/story"><img src="/img/{i}.jpg" alt="Picture '
        f'for story {i}" width="120" height="80" loading="lazy"><span class="related__title">Another story '
        f"from the section, number {i}</span></a></li>"
        for i in range(24)
    )
    footer = "".join(f'<a class="footer__link c{i}" href="/about/{i}">About link {i}</a>' for i in range(40))
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Article</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">{meta}<style>{css}</style>'
        f'<script>{state}</script></head><body class="page"><header class="masthead"><nav><ul>{nav}'
        f'</ul></nav></header><main><article class="article"><h1 class="article__title">Article</h1>'
        f'<div class="article__byline">By a reporter</div>{article}</article><aside class="related">'
        f'<ul>{related}</ul></aside></main><footer class="footer">{footer}</footer>'
        '<script src="/static/app.js" defer></script>'
    )
    pad = max(0, size - len(page.encode()) - len("</body></html>") - 40)
    page += f'<script>window.__PAD__="{"x" * pad}";</script></body></html>'
    return page.encode()


def _html_paragraphs(text: str) -> list[str]:
    chunks = re.findall(r".{1,400}(?:\s|$)", text, flags=re.S)
    return [c.replace("&", "&amp;").replace("<", "&lt;") for c in chunks if c.strip()]


def mix_pages(count: int = 136) -> list[bytes]:
    """Distinct real pages of every size (about 3 KB to 160 KB): each wraps different real text from
    ../shared/data/benign-dev (all of it, sensitive topics and library matches included, as real traffic
    has them) in a page shell whose markup share varies as real pages' does (text 12-60% of the page)."""
    texts = (
        [p.read_text(errors="replace") for p in sorted(BENIGN_DIR.glob("*.txt"))]
        if BENIGN_DIR.is_dir()
        else []
    )
    if not texts:
        sys.exit(f"bench_proxy needs the real pages in {BENIGN_DIR}")
    pages = []
    for i in range(count):
        # sizes spread evenly on a log scale; text taken from the i-th text onwards, so every page differs
        size = int(3_000 * (160_000 / 3_000) ** (i / max(1, count - 1)))
        share = 0.12 + 0.48 * ((i * 7919) % 100) / 100
        want, words, j = int(size * share), [], i
        while sum(map(len, words)) < want:
            words.append(texts[j % len(texts)][: want - sum(map(len, words))])
            j += 1
        pages.append(benign_page(size=size, paragraphs=_html_paragraphs(" ".join(words))))
    return pages


def large_page() -> bytes:
    """One large real page (~130 KB, 30% visible text), like the 113 KB news page measured from outside."""
    texts = [p.read_text(errors="replace") for p in sorted(BENIGN_DIR.glob("readability__*.txt"))]
    body = " ".join(texts)[:40_000] if texts else ""
    return benign_page(size=130_000, paragraphs=_html_paragraphs(body))


def matches_page(benign: bytes) -> bytes:
    marker = b"<p>I want to kill myself tonight. kms. he said he would shoot up the school.</p>"
    return benign.replace(b"</article>", marker + b"</article>", 1)


def make_cert(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "up.key", directory / "up.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def start_nginx(directory: Path, http_port: int, https_port: int) -> subprocess.Popen[bytes]:
    www = directory / "www"
    www.mkdir()
    directory.chmod(0o755)  # nginx's workers run as www-data: they must be able to read the pages
    benign = benign_page()
    (www / "benign.html").write_bytes(benign)
    (www / "matches.html").write_bytes(matches_page(benign))
    (www / "dense.html").write_bytes(dense_page())
    (www / "large.html").write_bytes(large_page())
    (www / "mix").mkdir()
    for i, page in enumerate(mix_pages()):
        (www / "mix" / f"{i:03d}.html").write_bytes(page)
    key, cert = make_cert(directory)
    conf = directory / "nginx.conf"
    conf.write_text(f"""
worker_processes 1; daemon off; pid {directory}/nginx.pid; error_log {directory}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; keepalive_requests 100000; types {{ text/html html; }}
  server {{ listen 127.0.0.1:{http_port}; root {www}; }}
  server {{ listen 127.0.0.1:{https_port} ssl; root {www};
           ssl_certificate {cert}; ssl_certificate_key {key}; }}
}}
""")
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(http_port)
    wait_port(https_port)
    return proc


# Through the explicit proxy, a browser's Host header names the site in the URL (not the proxy, which is
# what wrk would send): the proxy refuses a Host that does not match where the request goes.
LUA_ONE = """
wrk.path = "{url}"
{host}
"""
#: The mix: every request asks for the next page in turn, so no two bodies in a row are the same.
LUA_MIX = """
local paths = {{{paths}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i % #paths) + 1])
end
{host}
"""


def run_wrks(
    targets: list[str], path_or_url: str, seconds: int, connections: int, work: Path
) -> dict[str, float]:
    """One wrk per proxy worker's port, at the same time, the connections shared out: requests/s
    summed, p50 the mean and p99 the worst of theirs."""
    if len(targets) == 1:
        return run_wrk(targets[0], path_or_url, seconds, connections, work)
    from concurrent.futures import ThreadPoolExecutor

    share = max(1, connections // len(targets))
    with ThreadPoolExecutor(len(targets)) as pool:
        results = list(
            pool.map(lambda t: run_wrk(t[1], path_or_url, seconds, share, work, t[0]), enumerate(targets))
        )
    return {
        "rps": sum(r["rps"] for r in results),
        "p50": statistics.mean(r["p50"] for r in results),
        "p99": max(r["p99"] for r in results),
    }


def run_wrk(
    target: str, path_or_url: str, seconds: int, connections: int, work: Path, n: int = 0
) -> dict[str, float]:
    script = work / f"proxy-{n}.lua"
    authority = urlsplit(path_or_url).netloc
    host = f'wrk.headers["Host"] = "{authority}"' if authority else ""
    if path_or_url.endswith("/mix"):
        count = len(list((work / "www" / "mix").glob("*.html")))
        paths = ", ".join(f'"{path_or_url}/{i:03d}.html"' for i in range(count))
        script.write_text(LUA_MIX.format(paths=paths, host=host))
    else:
        script.write_text(LUA_ONE.format(url=path_or_url, host=host))
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            target,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = done.stdout
    if done.returncode != 0:  # counted as a run that served nothing: the table marks it not valid
        print(f"wrk failed on {target}: {(done.stderr or out).strip()[:200]}", file=sys.stderr)
        return {"rps": 0.0, "p50": float("nan"), "p99": float("nan")}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, flags=re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    if errors:
        sys.exit(f"wrk saw {errors.group(1)} non-2xx responses from {target} {path_or_url}: not a valid run")
    return {"rps": rps, "p50": pct("50"), "p99": pct("99")}


def start_proxy(
    kind: str, mode: str, port: int, work: Path, upstream_cert: Path, sets: list[str] = (), workers: int = 1
) -> list[subprocess.Popen[bytes]]:  # type: ignore[assignment]
    """Bare mitmdump: ``workers`` processes on ports ``port``..; netmon: one ``netmon run --workers N``,
    which listens on the same ports."""
    if kind == "bare":
        return [_start_one(kind, mode, port + i, work, upstream_cert, sets, 1) for i in range(workers)]
    return [_start_one(kind, mode, port, work, upstream_cert, sets, workers)]


def _start_one(
    kind: str, mode: str, port: int, work: Path, upstream_cert: Path, sets: list[str], workers: int
) -> subprocess.Popen[bytes]:
    common = [
        "--set",
        "flow_detail=0",
        "--set",
        f"ssl_verify_upstream_trusted_ca={upstream_cert}",
        "--set",
        "termlog_verbosity=warn",
    ]
    if kind == "bare":
        args = [
            str(VENV_BIN / "mitmdump"),
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "--mode",
            mode,
            "--set",
            f"confdir={work / 'conf'}",
            *common,
        ]
    else:
        state = work / f"state-{port}"
        args = [
            str(VENV_BIN / "netmon"),
            "run",
            "--port",
            str(port),
            "--mode",
            mode,
            "--db",
            f"sqlite:///{state / 'netmon.db'}",
            "--state-dir",
            str(state),
            "--workers",
            str(workers),
            "--confdir",
            str(work / "conf"),
            *common,
            *(a for s in sets for a in ("--set", s)),
        ]
    log = work / f"{kind}-{port}.log"
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        for i in range(workers):
            wait_port(port + i)
    except TimeoutError:
        proc.kill()
        sys.exit(f"{kind} did not start:\n{log.read_text(errors='replace')}")
    time.sleep(1.0)  # let the scan workers compile the library
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children (the scan workers)."""
    total = 0.0
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return total
    return total + sum(cpu_seconds(int(c)) for c in children)


def cpu_by_role(pid: int, out: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds of ``pid`` and its descendants, by role: ``scan`` (netmon's scan workers) and
    ``proxy`` (mitmdump or netmon's proxy processes)."""
    out = {"proxy": 0.0, "scan": 0.0} if out is None else out
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except (OSError, IndexError, ValueError):
        return out
    role = "scan" if b"netmon.scan.worker" in cmdline else "proxy"
    out[role] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in children:
        cpu_by_role(int(child), out)
    return out


def _cpu(procs: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    total = {"proxy": 0.0, "scan": 0.0}
    for proc in procs:
        for role, seconds in cpu_by_role(proc.pid).items():
            total[role] += seconds
    return total


def wait_idle(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Wait until netmon and its scan workers have finished the backlog of the last run, so that
    the next (bare) run does not share the CPU with it."""
    deadline = time.monotonic() + timeout
    last = sum(cpu_seconds(p.pid) for p in procs)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(cpu_seconds(p.pid) for p in procs)
        if now - last < 0.05:  # under 10% of a core
            return
        last = now


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (netmon's proxy workers listen on port, port+1..)."""
    for _ in range(50):
        port = free_port()
        if port + count < 65536 and all(_is_free(port + i) for i in range(1, count)):
            return port
    raise RuntimeError("no consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def compare(
    args: argparse.Namespace,
    work: Path,
    scheme: str,
    page: str,
    http_port: int,
    https_port: int,
    workers: int = 1,
) -> dict[str, dict[str, object]]:
    """Alternating rounds through bare mitmdump and netmon (both kept running): medians, the
    netmon/bare ratio of each round (a bare and a netmon run back to back), and netmon's counters
    over all its rounds."""
    procs, targets = {}, {}
    path = f"http://127.0.0.1:{http_port}/{page}" if scheme == "http" else f"/{page}"
    try:
        for kind in ("bare", "netmon"):
            port = free_ports(workers)
            if scheme == "http":
                mode, targets[kind] = "regular", f"http://127.0.0.1:{port}"
            else:
                mode, targets[kind] = f"reverse:https://127.0.0.1:{https_port}", f"https://127.0.0.1:{port}"
            procs[kind] = (start_proxy(kind, mode, port, work, work / "up.pem", args.sets, workers), port)
            base = targets[kind].rsplit(":", 1)[0]  # one target per proxy worker's port
            targets[kind] = [f"{base}:{port + i}" for i in range(workers)]  # type: ignore[assignment]
        for kind in ("bare", "netmon"):
            run_wrks(targets[kind], path, 2, args.connections, work)  # warm-up
        wait_idle(procs["netmon"][0])
        runs: dict[str, list[dict[str, float]]] = {"bare": [], "netmon": []}
        for i in range(args.rounds):
            # pairs in alternating order, so that neither always runs just after the other
            for kind in ("bare", "netmon") if i % 2 == 0 else ("netmon", "bare"):
                before = _cpu(procs[kind][0])
                run = run_wrks(targets[kind], path, args.seconds, args.connections, work)
                if kind == "netmon":
                    wait_idle(procs["netmon"][0])  # the backlog's scans count for this run's requests
                after = _cpu(procs[kind][0])
                requests = max(1.0, run["rps"] * args.seconds)
                for role in ("proxy", "scan"):  # CPU ms per request: steadier than req/s on a shared machine
                    run[f"{role}_ms"] = (after[role] - before[role]) * 1000 / requests
                runs[kind].append(run)
    finally:
        for group, _ in procs.values():
            for proc in group:
                stop(proc)
    result: dict[str, dict[str, object]] = {}
    for kind, rs in runs.items():
        result[kind] = {
            k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "proxy_ms", "scan_ms")
        }
        result[kind]["rps_rounds"] = [r["rps"] for r in rs]
    totals: dict[str, int] = {}
    for status_file in (work / f"state-{procs['netmon'][1]}").glob("status*.json"):
        for key, value in json.loads(status_file.read_text()).get("counters", {}).items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
    result["counters"] = totals
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7, help="bare/netmon pairs per page, alternating")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--pages",
        nargs="+",
        default=["mix", "large.html"],
        help="mix (136 distinct real pages in turn), large.html, benign.html, matches.html, dense.html",
    )
    parser.add_argument("--schemes", nargs="+", default=["http", "https"])
    parser.add_argument(
        "--workers",
        nargs="+",
        type=int,
        default=[1, 2],
        help="proxy processes: bare mitmdump runs this many, netmon `netmon run --workers N`",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        help="extra netmon option for the netmon runs, e.g. netmon_scan_queue=1",
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"bench_proxy needs {tool}: apt-get install wrk nginx-light openssl")
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="netmon-bench-") as tmp:
        work = Path(tmp)
        http_port, https_port = free_port(), free_port()
        nginx = start_nginx(work, http_port, https_port)
        rows = []
        try:
            for workers in args.workers:
                for scheme in args.schemes:
                    for page in args.pages:
                        result = compare(args, work, scheme, page, http_port, https_port, workers)
                        rows.append((f"{scheme} w{workers}", page, result))
        finally:
            nginx.send_signal(signal.SIGTERM)
            nginx.wait()
    print(
        f"\nProxy throughput, {args.connections} connections, keep-alive, {os.cpu_count()} cores, "
        f"load average before the run {load_before}: "
        f"{args.rounds} rounds of {args.seconds} s, bare and netmon alternating; medians\n"
        "(ratio: the median of the netmon/bare ratios of the rounds, each a bare and a netmon run in a row)"
    )
    print(
        f"{'path (w: proxy workers)':<22}{'bare req/s':>11}{'netmon req/s':>14}{'ratio':>7}{'(rounds)':>12}"
        f"{'bare p50/p99 ms':>18}{'netmon p50/p99 ms':>20}  scanner"
    )
    for scheme, page, r in rows:
        bare, nm, c = r["bare"], r["netmon"], r["counters"]
        skipped = sum(
            v for k, v in c.items() if k.startswith("scan.skipped.queue") or k == "scan.error.worker"
        )
        if min(nm["rps_rounds"]) == 0 or min(bare["rps_rounds"]) == 0:
            print(
                f"{scheme + ' ' + page:<22} NOT VALID: a run served 0 requests/s "
                f"(netmon tls.refused {c.get('tls.refused', 0)}, scanned {c.get('scan.done', 0)})"
            )
            continue
        ratios = [n / b for n, b in zip(nm["rps_rounds"], bare["rps_rounds"], strict=True)]
        spread, ratio = f"{min(ratios):.2f}-{max(ratios):.2f}", statistics.median(ratios)
        print(
            f"{scheme + ' ' + page:<22}{bare['rps']:>11.0f}{nm['rps']:>14.0f}{ratio:>7.2f}"
            f"{spread:>12}{bare['p50']:>9.1f}/{bare['p99']:<8.1f}{nm['p50']:>10.1f}/{nm['p99']:<9.1f}"
            f"  scanned {c.get('scan.done', 0)}, skipped {skipped}, matched {c.get('scan.matched', 0)}"
        )
    print(
        "\nCPU ms per request (medians of the rounds; the scan's backlog counted with its run; "
        "the rest of the machine's work not included):"
    )
    head = f"{'path (w: proxy workers)':<22}{'bare':>8}{'netmon proxy':>14}{'netmon scan':>13}"
    print(f"{head}{'bare/netmon':>13}")
    for scheme, page, r in rows:
        bare, nm = r["bare"], r["netmon"]
        netmon_ms = nm["proxy_ms"] + nm["scan_ms"]
        cpu_ratio = bare["proxy_ms"] / netmon_ms if netmon_ms else float("nan")
        print(
            f"{scheme + ' ' + page:<22}{bare['proxy_ms']:>8.2f}{nm['proxy_ms']:>14.2f}{nm['scan_ms']:>13.2f}"
            f"{cpu_ratio:>13.2f}"
        )
    print(
        "targets: netmon/bare >= 0.85 on the mix, >= 0.8 on the large page; no page skipped by the scanner\n"
        "pages: mix = 136 distinct real pages of 3-160 KB in turn (text from shared/data/benign-dev,\n"
        "       matches included); large = a 130 KB real article page; benign = a 50 KB page with no match;\n"
        "       matches = benign with a paragraph of severe phrases; dense = 50 KB of text (worst case)"
    )
    scanner_bench = REPO / "bench" / "bench_scanner.py"
    if scanner_bench.exists():
        print()
        subprocess.run([sys.executable, str(scanner_bench)], check=False)


if __name__ == "__main__":
    main()
