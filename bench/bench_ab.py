"""Two versions of netmon side by side in one run, against bare mitmdump: CPU ms per request of each.

    .venv/bin/python bench/bench_ab.py --a TREE_A --b TREE_B [--pages mix] [--rounds 6] [--seconds 4]

``TREE_A`` and ``TREE_B`` are source trees of netmon (e.g. ``git archive COMMIT | tar -x -C DIR``, with
or without a change copied in). Each ``netmon run`` imports its own tree (``PYTHONPATH`` pointing at
links named as the installed packages), the scan workers included; nginx, wrk, the pages and the CPU
accounting are ``bench/bench_proxy.py``'s. All three proxies stay up and are driven in turn, round after
round (the order rotated each round), so the machine's other load falls on all of them alike. Prints,
for each of bare, A and B: the median requests/s and p50/p99 latency, and the median CPU ms per
request of the proxy process and of the scan workers (the scan's backlog counted with its run), with
B/A ratios. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_proxy as bp  # noqa: E402 - the bench's own helpers

PACKAGES = {
    "netmon": "netmon",
    "netmon_proxy": "addons",
    "netmon_console": "console",
    "netmon_portal": "captive_portal",
}


def import_path(tree: Path, work: Path, name: str) -> str:
    """A directory of links named as the installed packages, into ``tree``."""
    links = work / f"pkgs-{name}"
    links.mkdir()
    for package, folder in PACKAGES.items():
        (links / package).symlink_to(tree.resolve() / folder)
    return str(links)


def start(kind: str, mode: str, work: Path, sets: list[str], pythonpath: str | None) -> tuple[list, int]:
    port = bp.free_ports(1)
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath
    try:
        procs = bp.start_proxy(
            "bare" if kind == "bare" else "netmon", mode, port, work, work / "up.pem", sets
        )
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return procs, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="netmon source tree A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="netmon source tree B")
    parser.add_argument("--pages", nargs="+", default=["mix"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--counters", nargs="*", default=[], help="also print counters with these prefixes")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="netmon-ab-") as tmp:
        work = Path(tmp)
        http_port, https_port = bp.free_port(), bp.free_port()
        nginx = bp.start_nginx(work, http_port, https_port)
        rows = []
        try:
            for page in args.pages:
                rows.append((page, compare(args, work, page, http_port)))
        finally:
            nginx.send_signal(signal.SIGTERM)
            nginx.wait()
    print(
        f"\nHTTP, {args.connections} connections, {args.rounds} rounds of {args.seconds} s, bare / A / B in "
        f"turn; load average before {load_before}; medians (CPU ms per request: proxy process, scan workers)"
    )
    for page, r in rows:
        print(f"{page}:")
        for kind in ("bare", "A", "B"):
            runs = r[kind]
            rps = statistics.median(x["rps"] for x in runs)
            proxy = statistics.median(x["proxy_ms"] for x in runs)
            scan = statistics.median(x["scan_ms"] for x in runs)
            p50 = statistics.median(x["p50"] for x in runs)
            p99 = statistics.median(x["p99"] for x in runs)
            rounds = " ".join(f"{x['proxy_ms']:.2f}" for x in runs)
            print(
                f"  {kind:<5} req/s {rps:7.0f}  p50/p99 ms {p50:6.1f}/{p99:<6.1f}  proxy {proxy:5.2f}  "
                f"scan {scan:5.2f}   by round: {rounds}"
            )
        pairs = [b["proxy_ms"] / a["proxy_ms"] for a, b in zip(r["A"], r["B"], strict=True) if a["proxy_ms"]]
        print(
            f"  B/A proxy CPU per request: median of rounds {statistics.median(pairs):.3f} "
            f"(range {min(pairs):.3f}-{max(pairs):.3f})"
        )
        for kind in ("A", "B"):
            c = r[f"{kind}_counters"]
            skipped = sum(v for k, v in c.items() if k.startswith("scan.skipped.queue"))
            print(
                f"  {kind} counters: scanned {c.get('scan.done', 0)}, skipped {skipped}, matched "
                f"{c.get('scan.matched', 0)}, recording.new {c.get('recording.new', 0)}, "
                f"recording.merged {c.get('recording.merged', 0)}, "
                f"recording.filtered {c.get('recording.filtered', 0)}"
            )
            for key in sorted(k for k in c if k.startswith(tuple(args.counters))):
                print(f"    {key} {c[key]}")


def compare(args: argparse.Namespace, work: Path, page: str, http_port: int) -> dict[str, object]:
    path = f"http://127.0.0.1:{http_port}/{page}"
    trees = {"A": import_path(args.a, work, "A"), "B": import_path(args.b, work, "B")}
    procs: dict[str, tuple[list, int]] = {}
    try:
        procs["bare"] = start("bare", "regular", work, args.sets, None)
        for kind in ("A", "B"):
            procs[kind] = start("netmon", "regular", work, args.sets, trees[kind])
        targets = {kind: [f"http://127.0.0.1:{port}"] for kind, (_, port) in procs.items()}
        for kind in procs:
            bp.run_wrks(targets[kind], path, 2, args.connections, work)  # warm-up
        for kind in ("A", "B"):
            bp.wait_idle(procs[kind][0])
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in procs}
        order = ["bare", "A", "B"]
        for i in range(args.rounds):
            for kind in order[i % 3 :] + order[: i % 3]:
                before = bp._cpu(procs[kind][0])
                run = bp.run_wrks(targets[kind], path, args.seconds, args.connections, work)
                if kind != "bare":
                    bp.wait_idle(procs[kind][0])
                after = bp._cpu(procs[kind][0])
                requests = max(1.0, run["rps"] * args.seconds)
                for role in ("proxy", "scan"):
                    run[f"{role}_ms"] = (after[role] - before[role]) * 1000 / requests
                runs[kind].append(run)
    finally:
        for group, _ in procs.values():
            for proc in group:
                bp.stop(proc)
    result: dict[str, object] = dict(runs)
    for kind in ("A", "B"):
        totals: dict[str, int] = {}
        for status_file in (work / f"state-{procs[kind][1]}").glob("status*.json"):
            for key, value in json.loads(status_file.read_text()).get("counters", {}).items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        result[f"{kind}_counters"] = totals
    return result


if __name__ == "__main__":
    main()
