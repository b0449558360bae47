"""Keep what a pupil sent out of the proxy's log.

mitmproxy logs some protocol errors with the bytes a device sent: a malformed request line is logged as
``Bad HTTP request line: b'GET http://www.bing.com/search?q=... HTTP/1.1 x'``, search terms and all.
:func:`install` wraps the process's log record factory so that every record from mitmproxy has such
byte strings and URL queries replaced before any handler formats it. netmon's own modules never log
content in the first place (STYLE.md); this covers the framework's messages.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_BYTES = re.compile(r"""\bb(['"]).*?(?<!\\)\1""")
_QUERY = re.compile(r"(\?|&)[^\s'\"<>]*")
_TRIGGERS = ("b'", 'b"', "?")
_installed = False


def scrub(message: str) -> str:
    """``message`` without byte strings (what a device sent) and without URL query strings."""
    message = _BYTES.sub("<bytes not logged>", message)
    return _QUERY.sub(r"\1<not logged>", message)


def install() -> None:
    """Wrap the log record factory once per process (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith("mitmproxy"):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a broken format string: leave it to logging to report
                return record
            if any(t in message for t in _TRIGGERS):
                record.msg, record.args = scrub(message), ()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
