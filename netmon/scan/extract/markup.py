"""Visible text of HTML (and XML) documents: the tree parse (lexbor) and the linear fallback for pages
nested too deep to parse as a tree."""

from __future__ import annotations

import re

import numpy as np
from selectolax.lexbor import LexborHTMLParser

from netmon.scan.extract.segments import SECRET_NAME, SEP, Extracted, join

#: Elements whose content is never shown as text.
HIDDEN_TAGS = ["script", "style", "template", "noscript"]
_FORM_TEXT = "img[alt], input[value], input[placeholder], textarea[placeholder], area[alt]"
_NOT_SHOWN_INPUT = {"hidden", "password", "file", "checkbox", "radio", "color", "range", "image"}
#: Inline elements: their text runs on with the text around them ("su<b>ic</b>ide" is "suicide", as a
#: browser shows it); every other element's text is a separate line.
INLINE_TAGS = ["b", "i", "em", "strong", "span", "a", "u", "s", "small", "mark", "sub", "sup", "font"]
_INLINE_SELECTOR = ",".join(INLINE_TAGS)


#: Block containers that the HTML parser must search its open-element stack for at every new one: a
#: page nesting thousands of them unclosed makes parsing quadratic (16,000 <div>: 2 s; 400,000: hours).
_STACK_SEARCHING = (
    "div",
    "section",
    "article",
    "aside",
    "nav",
    "header",
    "footer",
    "main",
    "blockquote",
    "center",
    "fieldset",
    "figure",
    "figcaption",
    "details",
    "summary",
    "dialog",
    "address",
    "dir",
    "menu",
    "ul",
    "ol",
    "dl",
    "hgroup",
    "pre",
    "listing",
    "search",
)
#: Most unclosed block containers parsed as a tree; deeper pages get the crude, linear extraction.
MAX_HTML_DEPTH = 3000


def too_deep(html: str | bytes) -> bool:
    """True when ``html`` may nest more than MAX_HTML_DEPTH unclosed block containers (cheap check)."""
    # Start tags minus end tags is an upper bound of the depth; nearly every page stops here.
    if isinstance(html, str):
        lt = html.count("<")
        if lt <= MAX_HTML_DEPTH or lt - 2 * html.count("</") <= MAX_HTML_DEPTH:
            return False
        data = html.encode("utf-8", "replace")
    else:
        # numpy counts ~5x faster than bytes.count: this check runs on every page.
        arr = np.frombuffer(html, dtype=np.uint8)
        lt_mask = arr == 60  # "<"
        lt = int(np.count_nonzero(lt_mask))
        if (
            lt <= MAX_HTML_DEPTH
            or lt - 2 * int(np.count_nonzero(lt_mask[:-1] & (arr[1:] == 47))) <= MAX_HTML_DEPTH
        ):
            return False
        data = html
    low = data.lower()
    depth = 0
    for tag in _STACK_SEARCHING:
        depth += low.count(b"<" + tag.encode()) - low.count(b"</" + tag.encode())
    return depth > MAX_HTML_DEPTH


_RAW_OPEN = re.compile(r"<(script|style|template|noscript)\b|<!--", re.I)
_TAG = re.compile(r"<[^<>]*>")  # stops at the next "<": linear even on "<<<<..."
_INLINE_TAG = re.compile(rf"</?(?:{'|'.join(INLINE_TAGS)})(?=[\s/>])[^<>]*>", re.I)


def _drop_raw_text(text: str) -> str:
    """Remove script/style/template/noscript elements and comments in one linear pass."""
    low = text.lower()
    out: list[str] = []
    pos = 0
    while (m := _RAW_OPEN.search(text, pos)) is not None:
        out.append(text[pos : m.start()])
        closer = "-->" if m.group(1) is None else f"</{m.group(1).lower()}"
        end = low.find(closer, m.end())
        if end == -1:
            return "".join(out)  # unterminated: the rest is not shown either
        close = low.find(">", end)
        pos = len(text) if close == -1 else close + 1
    out.append(text[pos:])
    return "".join(out)


def crude_html_text(html: str | bytes) -> Extracted:
    """Linear fallback for pathological pages: drop raw-text elements and tags, decode references."""
    from html import unescape

    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    text = _TAG.sub("\n", _INLINE_TAG.sub("", _drop_raw_text(text)))
    return join([("body", unescape(text))], "html", ("deep-html",))


def html_text(html: str | bytes) -> Extracted:
    """Visible text of an HTML document: <title>, body text (one line per text node), alt texts,
    input values and placeholders. Scripts, styles, templates, noscript, comments and markup are not
    included; character references are decoded. The text of inline elements (INLINE_TAGS) runs on with
    its neighbours, as it is shown. Bytes are read as UTF-8."""
    if too_deep(html):
        return crude_html_text(html)
    tree = LexborHTMLParser(html)
    tree.strip_tags(HIDDEN_TAGS)
    _run_on_inline(tree)
    parts: list[tuple[str, str]] = []
    head = tree.head  # <title> belongs there; one in <body> is part of the body text anyway
    title = head.css_first("title") if head is not None else None
    if title is not None:
        parts.append(("title", title.text(separator=" ").strip()))
    body = tree.body
    if body is not None:
        parts.append(("body", body.text(separator=SEP, skip_empty=True)))
    seen: set[int] = set()
    for node in tree.css(_FORM_TEXT):
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        attrs = node.attributes
        if node.tag in ("img", "area"):
            parts.append(("alt", attrs.get("alt") or ""))
            continue
        if node.tag == "input" and (attrs.get("type") or "text").lower() in _NOT_SHOWN_INPUT:
            continue
        if SECRET_NAME.search(attrs.get("name") or ""):
            continue
        parts.append(("input", attrs.get("value") or ""))
        parts.append(("placeholder", attrs.get("placeholder") or ""))
    return join(parts, "html")


def _run_on_inline(tree: LexborHTMLParser) -> None:
    """Unwrap inline elements and merge the text nodes left side by side, so that a word split by
    markup ("su<b>ic</b>ide") is one word again."""
    inline = tree.css(_INLINE_SELECTOR)  # one query (unwrap_tags runs one per tag)
    if inline:
        for node in inline:
            node.unwrap()
        tree.merge_text_nodes()


def xml_text(xml: str) -> Extracted:
    """Text content of an XML document (RSS, Atom, SVG text...): CDATA kept, markup dropped; inline
    HTML elements (in RSS descriptions) run on as in ``html_text``."""
    # RSS descriptions hold HTML, shown rendered: drop the CDATA markers (linear, unlike a regex)
    xml = xml.replace("<![CDATA[", "").replace("]]>", "")
    if too_deep(xml):
        return crude_html_text(xml)
    tree = LexborHTMLParser(xml)
    tree.strip_tags(HIDDEN_TAGS)
    _run_on_inline(tree)
    root = tree.root
    text = root.text(separator=SEP, skip_empty=True) if root is not None else ""
    return join([("xml", text)], "xml")
