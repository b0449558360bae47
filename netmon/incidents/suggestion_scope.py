"""Where a suggested library change applies: everywhere, or the site or page a false alarm fired on.

A scope names the incident's host (the verified host the scan was given) and, for a page, its URL path;
it becomes a host-scoped overlay line (docs/library-format.md), which only quiets page bodies. A
suggestion row keeps its scope in its ``scope`` column ("" everywhere) and the host its false alarm fired
on in ``host`` (:func:`stored`). Rows once kept a scope in ``host`` as ``on:SCOPE``: migration 0013c
moves them, and :func:`scope_of` and :func:`fired_on` still read that form, as does a caller that passes
the host column alone (:func:`stored_host` writes it for a caller that does not set ``scope``).
"""

from __future__ import annotations

from typing import Any, Protocol

from netmon.scan.site_scope import check_scope, page_path, split_scope

SCOPED = "on:"  # prefix of a scope in a suggestion's host column, as rows before 0013c kept it
#: Where a change applies: everywhere, or the site / the page the false alarm fired on.
EVERYWHERE, SITE, PAGE = "everywhere", "site", "page"
MAX_STORED = 255  # the host and scope columns' size: a longer page is offered as its site only


class Suggested(Protocol):
    """What a suggestion row has for these functions (netmon.store.suggestions.LibrarySuggestion)."""

    host: str
    scope: str


def scope_choices(incident: Any) -> dict[str, str]:
    """{"site": "host", "page": "host/path"} for an incident's host and URL (the scopes a change from it
    may have besides everywhere); empty when the host is not one a scope can name."""
    host = str(getattr(incident, "host", "") or "").strip().lower().rstrip(".")
    site = check_scope(host)[0] if host and "/" not in host else None
    if site is None:
        return {}
    choices = {SITE: site}
    path = page_path(str(getattr(incident, "url", "") or ""))
    page = check_scope(site + path)[0]
    if page is not None and path != "/" and len(SCOPED + page) <= MAX_STORED:
        choices[PAGE] = page
    return choices


def stored(incident_host: str, scope: str) -> dict[str, str]:
    """A suggestion row's ``host`` and ``scope`` columns for a change from an incident on ``incident_host``
    that applies to ``scope`` ("" everywhere)."""
    return {"host": incident_host[:MAX_STORED], "scope": scope}


def stored_host(incident_host: str, scope: str) -> str:
    """The host column in the form rows kept before the scope column (``on:SCOPE`` for a scoped change),
    for a caller that sets ``host`` alone; :func:`stored` gives both columns."""
    return (SCOPED + scope) if scope else incident_host


def _legacy(host_column: str) -> tuple[str, str]:
    """(host fired on, scope) from a host column that may hold ``on:SCOPE``."""
    if host_column.startswith(SCOPED):
        scope = host_column[len(SCOPED) :]
        return split_scope(scope)[0], scope
    return host_column, ""


def scope_of(row: Suggested | str) -> str:
    """Where a suggestion applies ("" everywhere): its scope column, or a scope its host column holds
    (given a row, or the host column alone)."""
    if isinstance(row, str):
        return _legacy(row)[1]
    return row.scope or _legacy(row.host or "")[1]


def fired_on(row: Suggested | str) -> str:
    """The host a suggestion's false alarm fired on (given a row, or its host column alone)."""
    return _legacy(row if isinstance(row, str) else (row.host or ""))[0]


def describe_scope(scope: str) -> str:
    """Plain words for where a change applies."""
    if not scope:
        return "everywhere: every site and everything pupils type"
    host, path = split_scope(scope)
    if path:
        return f"only on pages of {host} under {path} (page text only, never what pupils type)"
    return f"only on pages of {host} and its subdomains (page text only, never what pupils type)"
