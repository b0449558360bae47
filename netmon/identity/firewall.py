"""The firewall's list of signed-in devices: nftables sets ``signed_v4`` / ``signed_v6`` kept equal to the
addresses with a live session in the store.

deploy/nftables/netmon.nft lets only those addresses reach the ports the school lists (SCHOOL_TCP_PORTS,
SCHOOL_UDP_PORTS); everything else from the pupils' network goes through the proxy or is refused. Each sync
replaces both sets in one atomic nft transaction (``flush set`` + ``add element``), so a device signed out
in the store loses its ports at the next sync. Runs as root (CAP_NET_ADMIN) in netmon-firewall-sync.service:

    python -m netmon.identity.firewall [--db URL] [--interval 5] [--once]
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import subprocess
import sys
import time
from collections.abc import Iterable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from netmon.identity.sessions import SETTING_AUP_VERSION, get_setting, live, open_sessions
from netmon.store.base import utcnow

log = logging.getLogger(__name__)

TABLE = "inet netmon"


def signed_in_addresses(session: Session) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) addresses with a live session, sorted."""
    now = utcnow()
    aup_version = get_setting(session, SETTING_AUP_VERSION)
    v4: set[str] = set()
    v6: set[str] = set()
    for row in open_sessions(session, now):
        if not live(row, now, aup_version):
            continue
        try:
            address = ipaddress.ip_address(row.ip)
        except ValueError:
            continue
        (v4 if address.version == 4 else v6).add(str(address))
    return sorted(v4), sorted(v6)


def nft_script(v4: Iterable[str], v6: Iterable[str], table: str = TABLE) -> str:
    """One nft transaction replacing both sets (addresses are validated, never pasted raw)."""
    lines = []
    for name, addresses, version in (("signed_v4", v4, 4), ("signed_v6", v6, 6)):
        checked = [str(a) for a in map(ipaddress.ip_address, addresses) if a.version == version]
        lines.append(f"flush set {table} {name}")
        if checked:
            lines.append(f"add element {table} {name} {{ {', '.join(checked)} }}")
    return "\n".join(lines) + "\n"


def apply(script: str, nft: str = "nft") -> None:
    """Run ``script`` with ``nft -f -``; raises RuntimeError with nft's message."""
    result = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"nft: {result.stderr.strip() or 'failed'}")


def sync_once(engine: Engine, last: str | None = None) -> str:
    """Read the store and apply the sets (every time: a reloaded ruleset starts with them empty);
    returns the script applied, logging only when it differs from ``last``."""
    with Session(engine) as session:
        v4, v6 = signed_in_addresses(session)
    script = nft_script(v4, v6)
    apply(script)
    if script != last:
        log.info("firewall: %d signed-in address(es)", len(v4) + len(v6))
    return script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netmon.identity.firewall", description=__doc__)
    parser.add_argument("--db", default=None, help="database URL (default: NETMON_DB, else the state dir)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between syncs")
    parser.add_argument("--once", action="store_true", help="sync once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from netmon.config.paths import default_db_url
    from netmon.store.db import make_engine

    engine = make_engine(args.db or default_db_url())
    last: str | None = None
    while True:
        try:
            last = sync_once(engine, last)
        except (SQLAlchemyError, RuntimeError, OSError) as exc:
            log.error("firewall sync failed (the sets keep their last contents): %s", exc)
            if args.once:
                return 1
            last = None
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
