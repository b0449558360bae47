"""The snapshot: what the pupil received, made safe to show to a DSL, compressed and capped.

HTML goes through nh3 (the maintained Rust sanitiser ammonia, with html5ever's parser), with an allow
list of inert markup only: text structure, tables, lists, images without a source. Nothing that runs,
loads or sends survives: no script, style, iframe/frame, object/embed, form, template, SVG or MathML;
no event handlers; no ``src``, ``srcset``, ``href``, ``style`` or other attribute that fetches or
navigates, so no external URL at all. A Content-Security-Policy that forbids every load is put first
in <head> as a second line of defence. Other text is kept as UTF-8 text/plain.

A worker keeps the last few snapshots it made (``RECENT``, bodies up to ``RECENT_MAX_BYTES``) with the
exact bytes they came from: the same page served again (a class opening one article, a page reloaded)
gets the same snapshot without sanitising and compressing it again. Only identical bytes, kind,
charset and cap reuse one (compared in full), so the output is always what ``make_snapshot`` would make.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

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


#: Per thread: the sanitiser built once with the settings above, and a zstd compressor (building
#: either for each snapshot cost about a tenth of making one).
_tools = threading.local()


def _cleaner() -> nh3.Cleaner:
    cleaner = getattr(_tools, "cleaner", None)
    if cleaner is None:
        cleaner = _tools.cleaner = nh3.Cleaner(
            tags=set(KEPT_TAGS),
            clean_content_tags=set(REMOVED_TAGS),
            attributes={k: set(v) for k, v in KEPT_ATTRS.items()},
            strip_comments=True,
            link_rel=None,
            url_schemes=set(),
        )
    return cleaner


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_tools, "compressor", None)
    if compressor is None:
        compressor = _tools.compressor = zstandard.ZstdCompressor(level=3)
    return compressor


def sanitise_html(html: str | bytes) -> str:
    """A whole document holding only the inert markup of ``html`` (see the module documentation).
    Bytes are read as UTF-8."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    body = _cleaner().clean(html)
    return f"<!DOCTYPE html><html><head>{SNAPSHOT_HEAD}</head><body>{body}</body></html>"


def _cap_utf8(text: str, cap: int) -> bytes:
    data = text.encode("utf-8")
    if len(data) <= cap:
        return data
    return data[:cap].decode("utf-8", "ignore").encode("utf-8")


#: Snapshots kept for reuse per process (the most recently used), and the largest body that is kept.
RECENT = 8
RECENT_MAX_BYTES = 512 * 1024
_recent: OrderedDict[tuple[int, str, str, int, int], tuple[bytes, tuple[bytes, str] | None]] = OrderedDict()
_recent_lock = threading.Lock()


def make_snapshot(body: Body, cap: int) -> tuple[bytes, str] | None:
    """(zstd-compressed bytes, media type before compression) of a decoded response, or None when it
    is not text. Uses the kind and charset the scan already worked out. The same bytes seen lately give
    the snapshot made then (see the module documentation)."""
    if len(body.data) > RECENT_MAX_BYTES:
        return _make_snapshot(body, cap)
    key = (len(body.data), body.kind, body.charset, body.bom, cap)
    with _recent_lock:
        seen = _recent.get(key)
        if seen is not None and seen[0] == body.data:
            _recent.move_to_end(key)
            return seen[1]
    made = _make_snapshot(body, cap)
    with _recent_lock:
        _recent[key] = (body.data, made)
        _recent.move_to_end(key)
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
    return made


def _make_snapshot(body: Body, cap: int) -> tuple[bytes, str] | None:
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
    return _compressor().compress(data), media


def open_snapshot(snapshot: bytes, max_size: int = 64 * 1024 * 1024) -> bytes:
    """Decompress a stored snapshot (for viewers and exports)."""
    return zstandard.ZstdDecompressor().decompress(snapshot, max_output_size=max_size)
