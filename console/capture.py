"""A saved capture made inert: sanitised again with nh3 (whatever the scanner stored) and served under a
Content-Security-Policy that runs nothing and fetches nothing, in a sandboxed frame."""

from __future__ import annotations

from html import escape

import nh3
import zstandard

#: The capture's own policy: no script, no request anywhere (images only as data: URLs), a sandbox, and
#: only the console may frame it.
CAPTURE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'"
)
MAX_CAPTURE = 16 * 1024 * 1024
#: Layout-only style properties: no url(), no positioning over the console.
STYLE_PROPERTIES = {
    "color", "background-color", "font-weight", "font-style", "font-size", "text-decoration",
    "text-align", "white-space",
}  # fmt: skip
_URL_ATTRIBUTES = {"href", "src", "cite", "srcset", "longdesc", "usemap", "action", "poster", "background"}
_HEAD = (
    '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
    "<title>capture</title></head><body>"
)


def _attribute(tag: str, attribute: str, value: str) -> str | None:
    """Keep a URL attribute only when it is an inline image (``data:image/...`` on ``img src``)."""
    if attribute in _URL_ATTRIBUTES:
        if tag == "img" and attribute == "src" and value.strip().lower().startswith("data:image/"):
            return value
        return None
    return value


def clean_html(html: str) -> str:
    """Markup a browser can show but not act on: nh3 (ammonia) with no URL that leaves the page."""
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = {"style", "title", "lang", "dir"}
    return nh3.clean(
        html,
        tags=set(nh3.ALLOWED_TAGS),
        clean_content_tags={"script", "style", "template", "noscript", "iframe", "object", "svg", "math"},
        attributes=attributes,
        attribute_filter=_attribute,
        strip_comments=True,
        link_rel=None,
        url_schemes={"data"},
        filter_style_properties=STYLE_PROPERTIES,
    )


def open_snapshot(snapshot: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(snapshot, max_output_size=MAX_CAPTURE)


def inert_document(snapshot: bytes | None, media_type: str | None, capture_text: str) -> str:
    """The page served at an incident's capture URL: the sanitised snapshot, or its text."""
    if snapshot is not None:
        try:
            body = open_snapshot(snapshot).decode("utf-8", "replace")
        except zstandard.ZstdError:
            body, media_type = "(the saved copy cannot be read)", "text/plain"
        if media_type == "text/html":
            return _HEAD + clean_html(body) + "</body></html>"
        return _HEAD + '<pre style="white-space: pre-wrap">' + escape(body) + "</pre></body></html>"
    if capture_text:
        return _HEAD + '<pre style="white-space: pre-wrap">' + escape(capture_text) + "</pre></body></html>"
    return _HEAD + "<p>No copy of the page was kept.</p></body></html>"
