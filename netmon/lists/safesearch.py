"""Safe search: force Google/Bing/DuckDuckGo safe search and YouTube restricted mode for a group.

``safe_search(host, path, query)`` says what to change in a search request (or None); the adapter
rewrites the query with :func:`rewrite_query`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from netmon.hosts import normalise_host

YOUTUBE_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "youtubei.googleapis.com",
        "youtube.googleapis.com",
        "www.youtube-nocookie.com",
        "music.youtube.com",
    }
)
_GOOGLE = re.compile(r"^(www\.)?google\.(com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})$")
_SEARCH_PATHS = ("/search", "/images", "/videos", "/webhp", "/complete/search", "/s")


@dataclass(frozen=True, slots=True)
class SafeSearchChange:
    """How to rewrite one request: new query items (None: unchanged) and headers to set."""

    engine: str
    query: tuple[tuple[str, str], ...] | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _is_google(host: str) -> bool:
    """www.google.com, google.co.uk, www.google.com.au ... (a Google search country domain)."""
    return _GOOGLE.match(host) is not None


def safe_search(host: str, path: str, query: Iterable[tuple[str, str]]) -> SafeSearchChange | None:
    """The safe-search rewrite for a request, or None when the site needs none.

    Google ``safe=active``, Bing ``adlt=strict``, DuckDuckGo ``kp=1`` on search paths; YouTube (and its
    API hosts) the ``YouTube-Restrict: Strict`` header. Google's ``forcesafesearch`` DNS answer is a
    gateway DNS setting for traffic netmon cannot rewrite (see the README).
    """
    host = normalise_host(host)
    items = list(query)
    if host in YOUTUBE_HOSTS:
        return SafeSearchChange("youtube", None, (("YouTube-Restrict", "Strict"),))
    if _is_google(host) and (path == "/" or path.startswith(_SEARCH_PATHS)):
        return _force("google", items, "safe", "active")
    if (host == "bing.com" or host.endswith(".bing.com")) and "search" in path:
        return _force("bing", items, "adlt", "strict")
    if host in ("duckduckgo.com", "html.duckduckgo.com", "lite.duckduckgo.com"):
        return _force("duckduckgo", items, "kp", "1")
    return None


def _force(engine: str, items: list[tuple[str, str]], key: str, value: str) -> SafeSearchChange | None:
    if [v for k, v in items if k == key] == [value]:
        return None
    kept = [(k, v) for k, v in items if k != key]
    return SafeSearchChange(engine, (*kept, (key, value)))


def rewrite_query(query: str, change: SafeSearchChange) -> str:
    """The query string with a change applied (helper for callers holding a raw query string)."""
    if change.query is None:
        return query
    return urlencode(list(change.query))


def parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)
