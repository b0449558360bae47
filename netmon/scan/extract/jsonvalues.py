"""JSON values read as text: every string value (credentials and blobs left out), and the string
literals of JSON too broken to parse."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from netmon.scan.extract.segments import SECRET_NAME, is_blob


def json_strings(value: object, label: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) for every string value in a parsed JSON document, depth first, in order.

    Keys named like credentials are skipped, and so are machine blobs (URLs, ids, base64)."""
    stack: list[tuple[str, object]] = [(label, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, str):
            if item and not is_blob(item):
                yield key, item
        elif isinstance(item, dict):
            stack.extend(
                (k, v)
                for k, v in reversed(list(item.items()))
                if not (isinstance(v, str) and SECRET_NAME.search(k))
            )
        elif isinstance(item, list):
            stack.extend((key, v) for v in reversed(item))


_STRING_LITERAL = re.compile(r'"([^"\\\n]*(?:\\.[^"\\\n]*)*)(?:"(\s*:)?|$)')  # unrolled: linear


def literals(text: str) -> Iterator[tuple[str, str]]:
    """String values of broken or truncated JSON, in order (keys left out, a cut-off last one kept)."""
    for m in _STRING_LITERAL.finditer(text):
        if m.group(2) is not None:
            continue
        try:
            s = json.loads(f'"{m.group(1)}"')
        except ValueError:
            continue
        if s and not is_blob(s):
            yield "", s


def loads(text: str) -> tuple[object, bool]:
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False
