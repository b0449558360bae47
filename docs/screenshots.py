"""Screenshots of the staff console for docs/console.md, taken from the real console.

    .venv/bin/python docs/screenshots.py [--out docs/img]

Seeds a new SQLite store with invented incidents (no real pupil: tests/console/live.py), runs
``netmon console`` under waitress on a loopback port, signs a DSL in through the real forms in headless
Chromium and saves the queue, an incident page and the dashboard at a desktop width (1280 CSS px) and a
phone width (390 CSS px) as PNGs, reduced to a 128-colour palette to stay small (< 150 KB each).
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from netmon.store.db import upgrade  # noqa: E402
from tests.console.live import browser_sign_in, live_console, load, seed_demo, set_width  # noqa: E402
from tests.portal.browser import Browser  # noqa: E402

WIDTHS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
MAX_HEIGHT = {"desktop": 1100, "phone": 1500}  # CSS px of the page kept (its top)
LIMIT = 150 * 1024


def shoot(browser: Browser, path: Path, width: int, max_height: int) -> int:
    """Save the top of the current page (up to ``max_height`` CSS px) as a palette PNG; returns its size."""
    height = min(int(browser.evaluate("document.documentElement.scrollHeight")), max_height)
    shot = browser.send(
        "Page.captureScreenshot", format="png", captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    )  # fmt: skip
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    path.write_bytes(out.getvalue())
    return len(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="netmon-shots-"))
    url = f"sqlite:///{work / 'demo.db'}"
    upgrade(url)
    uids = seed_demo(url, work)
    pages = {
        "queue": "/incidents?status=all",
        "incident": f"/incidents/{uids['top']}",
        "dashboard": "/dashboard",
    }
    with live_console(url, work) as site:
        browser = Browser(work / "profile")
        try:
            browser_sign_in(browser, site, "dsl")
            for kind, (width, height, mobile) in WIDTHS.items():
                set_width(browser, width, height, mobile)
                for name, path in pages.items():
                    load(browser, site + path)
                    time.sleep(0.5)  # the capture's frame paints after the page's load event
                    target = args.out / f"console-{name}-{kind}.png"
                    size = shoot(browser, target, width, MAX_HEIGHT[kind])
                    print(f"{target}: {size // 1024} KB")
                    if size > LIMIT:
                        raise SystemExit(
                            f"{target}: {size} bytes, over {LIMIT}: lower MAX_HEIGHT or the colours"
                        )
        finally:
            browser.close()


if __name__ == "__main__":
    main()
