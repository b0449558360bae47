"""Where a suggested library change applies: everywhere, or the site or page a false alarm fired on.

A scope names the incident's host (the verified host the scan was given) and, for a page, its URL path;
it becomes a host-scoped overlay line (docs/library-format.md), which only quiets page bodies. A
suggestion row keeps its scope in the ``host`` column as ``on:SCOPE``; a plain host there is where an
unscoped (everywhere) suggestion fired.
"""

from __future__ import annotations

from typing import Any

from netmon.scan.site_scope import check_scope, page_path, split_scope

SCOPED = "on:"  # prefix of a scope kept in a suggestion's host column
#: Where a change applies: everywhere, or the site / the page the false alarm fired on.
EVERYWHERE, SITE, PAGE = "everywhere", "site", "page"
MAX_STORED = 255  # the host column's size: a longer page is offered as its site only


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


def stored_host(incident_host: str, scope: str) -> str:
    """What a suggestion keeps in its host column: ``on:SCOPE`` for a scoped change, else the host."""
    return (SCOPED + scope) if scope else incident_host


def scope_of(host_column: str) -> str:
    """The scope of a suggestion ("" everywhere) from its host column."""
    return host_column[len(SCOPED) :] if host_column.startswith(SCOPED) else ""


def fired_on(host_column: str) -> str:
    """The host a suggestion's false alarm fired on, from its host column."""
    return split_scope(scope_of(host_column))[0] if host_column.startswith(SCOPED) else host_column


def describe_scope(scope: str) -> str:
    """Plain words for where a change applies."""
    if not scope:
        return "everywhere: every site and everything pupils type"
    host, path = split_scope(scope)
    if path:
        return f"only on pages of {host} under {path} (page text only, never what pupils type)"
    return f"only on pages of {host} and its subdomains (page text only, never what pupils type)"
