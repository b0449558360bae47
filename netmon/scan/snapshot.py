"""The snapshot: what the pupil received, made safe to show to a DSL, compressed and capped.

HTML goes through nh3 (the maintained Rust sanitiser ammonia, with html5ever's parser), with an allow
list of inert markup only: text structure, tables, lists, images without a source. Nothing that runs,
loads or sends survives: no script, style, iframe/frame, object/embed, form, template, SVG or MathML;
no event handlers; no ``src``, ``srcset``, ``href``, ``style`` or other attribute that fetches or
navigates, so no external URL at all. A Content-Security-Policy that forbids every load is put first
in <head> as a second line of defence. Other text is kept as UTF-8 text/plain.
"""

from __future__ import annotations

import nh3
import zstandard

from netmon.scan.extract import Body, crude_html_text, too_deep

#: Largest sanitised snapshot kept, before compression (``netmon_snapshot_max_bytes``).
DEFAULT_SNAPSHOT_CAP = 1024 * 1024

#: Elements dropped with everything inside them (active content, frames, embedded documents, forms'
#: machinery, metadata).
REMOVED_TAGS = frozenset(
    {
        "script",
        "style",
        "template",
        "noscript",
        "iframe",
        "frame",
        "frameset",
        "noframes",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "title",
        "head",
        "select",
        "datalist",
        "canvas",
        "audio",
        "video",
        "portal",
        "xmp",
        "noembed",
        "plaintext",
    }
)
#: Inert elements kept (their text is always kept, an element not listed is unwrapped).
KEPT_TAGS = frozenset(nh3.ALLOWED_TAGS - {"a", "area", "map"} | {"section", "main", "label", "font"})
#: Inert attributes kept; everything else goes, event handlers and anything that loads included.
KEPT_ATTRS: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "img": {"alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
}
#: Attributes that load something or navigate by themselves: never kept (checked at import).
LOADING_ATTRS = frozenset(
    {
        "src",
        "srcset",
        "href",
        "style",
        "data-src",
        "data-srcset",
        "poster",
        "background",
        "lowsrc",
        "dynsrc",
        "action",
        "formaction",
        "ping",
        "manifest",
        "xlink:href",
        "codebase",
        "archive",
        "longdesc",
        "usemap",
        "http-equiv",
        "integrity",
        "imagesrcset",
        "srcdoc",
        "cite",
    }
)
assert not LOADING_ATTRS & {a for attrs in KEPT_ATTRS.values() for a in attrs}
assert not REMOVED_TAGS & KEPT_TAGS

#: Put first in <head>: even if something slipped through, a browser loads nothing.
SNAPSHOT_HEAD = (
    '<meta charset="utf-8">'
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'\">"
    '<meta name="referrer" content="no-referrer">'
)


def sanitise_html(html: str | bytes) -> str:
    """A whole document holding only the inert markup of ``html`` (see the module documentation).
    Bytes are read as UTF-8."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    body = nh3.clean(
        html,
        tags=set(KEPT_TAGS),
        clean_content_tags=set(REMOVED_TAGS),
        attributes={k: set(v) for k, v in KEPT_ATTRS.items()},
        strip_comments=True,
        link_rel=None,
        url_schemes=set(),
    )
    return f"<!DOCTYPE html><html><head>{SNAPSHOT_HEAD}</head><body>{body}</body></html>"


def _cap_utf8(text: str, cap: int) -> bytes:
    data = text.encode("utf-8")
    if len(data) <= cap:
        return data
    return data[:cap].decode("utf-8", "ignore").encode("utf-8")


def make_snapshot(body: Body, cap: int) -> tuple[bytes, str] | None:
    """(zstd-compressed bytes, media type before compression) of a decoded response, or None when it
    is not text. Uses the kind and charset the scan already worked out."""
    if body.kind in ("binary", "code", "unsupported", "multipart", "form"):
        return None
    if body.kind == "html":
        text = body.text
        if too_deep(text):  # never parse it as a tree: keep what it says, as text
            data, media = _cap_utf8(crude_html_text(text).text, cap), "text/plain"
        else:
            data, media = _cap_utf8(sanitise_html(text), cap), "text/html"
    else:
        data, media = _cap_utf8(body.text, cap), "text/plain"
    return zstandard.ZstdCompressor(level=3).compress(data), media


def open_snapshot(snapshot: bytes, max_size: int = 64 * 1024 * 1024) -> bytes:
    """Decompress a stored snapshot (for viewers and exports)."""
    return zstandard.ZstdDecompressor().decompress(snapshot, max_output_size=max_size)
