"""Captured text made safe to show: no terminal escapes, no bidi tricks, in any output.

Captured content is hostile: a pupil's page or message can carry ANSI escape sequences (which rewrite a
terminal), C0/C1 control characters (which break CSV cells and mail headers) and Unicode bidi controls
(which make ``evil.com/moc.elgoog`` read as something else). Every output that shows captured text (CSV
and JSON exports, mail text, the CLI's tables, the console) passes it through :func:`neutralise` first.
HTML escaping is a separate, later step of each output (jinja2 autoescape, the CSV writer's quoting).
"""

from __future__ import annotations

import re

#: C0 controls except tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates and marks,
#: the Arabic letter mark, and the line/paragraph separators that some terminals treat as newlines.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def neutralise(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with escape sequences removed and every other unsafe character shown as ``\\uXXXX``.

    Tabs and (with ``keep_newlines``) newlines stay; anything else a terminal, spreadsheet or mail
    client would act on becomes visible and inert.
    """
    text = _ESCAPES.sub(lambda m: _visible(m.group(0)), text)
    if not keep_newlines:
        text = text.replace("\r\n", "\n").replace("\n", " ")
    return _UNSAFE.sub(lambda m: _visible(m.group(0)), text)


def _visible(chars: str) -> str:
    return "".join(
        f"\\u{ord(c):04x}" if not c.isprintable() or c in "\u061c\u200e\u200f" else c for c in chars
    )
