"""JSON documents, NDJSON and server-sent-event streams (AI-chat token deltas joined into the answer the
pupil saw), the Vercel AI SDK stream, and WebSocket messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from netmon.scan.extract.jsonvalues import json_strings, literals, loads
from netmon.scan.extract.segments import SEP, Extracted, join

_XSSI = re.compile(r"^\s*(?:\)\]\}'|while\s*\(1\);|for\s*\(;;\);)\s*")


def json_text(text: str) -> Extracted:
    """String values of a JSON document (anti-XSSI prefixes removed); falls back to NDJSON, then to
    the string literals of broken or truncated JSON (counted as ``bad-json``)."""
    text = _XSSI.sub("", text, count=1)
    value, ok = loads(text)
    if ok:
        return join(json_strings(value), "json")
    if "\n" in text.strip():
        return ndjson_text(text)
    return join(literals(text), "json", ("bad-json",))


def ndjson_text(text: str) -> Extracted:
    """Newline-delimited JSON: AI-chat token streams are joined, other lines' strings listed."""
    lines = [line for line in text.splitlines() if line.strip()]
    return _stream(lines, "ndjson")


def _first(items: object) -> object:
    return items[0] if isinstance(items, list) and items else None


def _get(obj: object, *path: str | int) -> object:
    for key in path:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and len(obj) > key else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def token_of(event: object) -> str | None:
    """The text delta carried by one AI-chat stream event, for the common shapes:
    OpenAI chat/completions and Responses, Anthropic, Gemini, ChatGPT web (patch ops), Hugging Face TGI,
    Ollama, Cohere and plain ``{"text"|"token"|"delta"|"content": ...}`` events. None if not a token."""
    if not isinstance(event, dict):
        return None
    choice = _first(event.get("choices"))
    if isinstance(choice, dict):
        for path in (("delta", "content"), ("text",), ("message", "content"), ("delta", "text")):
            val = _get(choice, *path)
            if isinstance(val, str):
                return val
        return ""  # a choice with no text (role or finish event)
    delta = event.get("delta")
    if isinstance(delta, str):
        return delta  # OpenAI Responses "response.output_text.delta"
    if isinstance(delta, dict):
        for key in ("text", "content", "partial_json"):
            if isinstance(delta.get(key), str):
                return str(delta[key]) if key != "partial_json" else None
    parts = _get(event, "candidates", 0, "content", "parts")
    if isinstance(parts, list):
        return "".join(
            p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    # ChatGPT web: {"p": "/message/content/parts/0", "o": "append", "v": "..."} or {"v": "..."}
    v = event.get("v")
    if isinstance(v, str) and set(event) <= {"p", "o", "v", "c"}:
        return v if event.get("o", "append") == "append" else None
    if isinstance(v, list) and event.get("o") == "patch":
        return "".join(
            op.get("v", "")
            for op in v
            if isinstance(op, dict)
            and op.get("o") == "append"
            and isinstance(op.get("v"), str)
            and "content/parts" in str(op.get("p", ""))
        )
    for path in (
        ("token", "text"),
        ("message", "content"),
        ("response",),
        ("completion",),
        ("text",),
        ("token",),
        ("content",),
    ):
        val = _get(event, *path)
        if isinstance(val, str):
            if path == ("token", "text") and _get(event, "token", "special") is True:
                return ""
            return val
    content = _get(event, "message", "content", "parts")
    if isinstance(content, list) and content and isinstance(content[0], str):
        return content[0]  # ChatGPT web (older): the whole answer so far, each event
    return None


#: Keys of stream events that hold protocol metadata, not words.
_STREAM_METADATA = {
    "type",
    "id",
    "model",
    "role",
    "object",
    "event",
    "finish_reason",
    "stop_reason",
    "status",
    "conversation_id",
    "message_id",
    "parent_id",
}


class _Answer:
    """Accumulates deltas; recognises streams that resend the whole answer so far each time."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, token: str) -> None:
        if len(self.text) >= 4 and len(token) > len(self.text) and token.startswith(self.text):
            self.text = token  # cumulative stream
        else:
            self.text += token


#: Stream events parsed as JSON per body; later ones are scanned as they are.
MAX_EVENTS = 20_000


def _stream(payloads: Iterable[str], kind: str) -> Extracted:
    answer = _Answer()
    other: list[str] = []
    for n, payload in enumerate(payloads):
        data = payload.strip()
        if not data or data == "[DONE]":
            continue
        if n >= MAX_EVENTS:
            other.append(data)
            continue
        if data[0] in "{[":
            value, ok = loads(data)
            if ok:
                token = token_of(value)
                if token is not None:
                    answer.add(token)
                else:
                    other.extend(s for k, s in json_strings(value) if k not in _STREAM_METADATA)
                continue
        if kind == "sse":
            answer.add(payload)  # plain-text token streams
        else:
            other.append(payload)
    return join([("answer", answer.text), ("events", SEP.join(other))], kind)


def sse_events(text: str) -> Iterator[str]:
    """The data of each server-sent event (multi-line data joined by newlines)."""
    data: list[str] = []
    for line in text.splitlines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def sse_text(text: str) -> Extracted:
    """Server-sent events: the answer an AI chat streamed, plus the strings of other events."""
    return _stream(sse_events(text), "sse")


_AI_SDK_LINE = re.compile(r'^0:(".*")\s*$', re.M)


def plain_text(text: str) -> Extracted:
    """text/plain; also the Vercel AI SDK data stream (``0:"token"`` lines) joined into its answer."""
    if text.startswith("0:"):
        tokens = []
        for m in _AI_SDK_LINE.finditer(text):
            value, ok = loads(m.group(1))
            if ok and isinstance(value, str):
                tokens.append(value)
        if tokens:
            return join([("answer", "".join(tokens))], "text")
    return join([("text", text)], "text")


_SOCKET_IO = re.compile(r"^\d{1,3}(?=[\[{])")


def message_text(message: str) -> Extracted:
    """A WebSocket text message: JSON (also Socket.IO frames like ``42["chat",{...}]``) or plain text."""
    stripped = _SOCKET_IO.sub("", message.lstrip(), count=1)
    if stripped[:1] in ("{", "["):
        value, ok = loads(stripped)
        if ok:
            return join(json_strings(value), "json")
    return join([("text", message)], "text")
