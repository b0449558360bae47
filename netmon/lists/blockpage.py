"""The block page a pupil sees where the school blocks a category, and its review reference."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path


def block_reference(url: str, when: float | None = None) -> str:
    """A short reference a pupil can quote when asking for a review (also stored on the incident)."""
    stamp = f"{when if when is not None else time.time():.6f}|{url}".encode()
    return hashlib.sha256(stamp).hexdigest()[:10].upper()


def render_block_page(
    *, host: str, url: str, categories: Iterable[str], lists: Iterable[str], review: str, reference: str
) -> str:
    """The block page (jinja2, autoescaped): what was blocked, why, and how to ask for a review."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    template = env.get_template("blockpage.html")
    shown_url = url if len(url) <= 200 else url[:200] + "…"
    return template.render(
        host=host,
        url=shown_url,
        categories=list(dict.fromkeys(categories)),
        lists=list(dict.fromkeys(lists)),
        review=review,
        reference=reference,
    )
