"""Blocker and SafeSearch: optional blocking per group and category, and safe-search enforcement.

Monitor-only is the default. ``Blocker`` answers a request with the block page only when a list hit's
category is set to ``block`` for one of the person's groups in ``policy/filtering.yaml``, and the
allow-list has not cleared the address (allow always wins, see :mod:`netmon.lists.filtering`). The block is
still an incident: ``UrlListChecker`` records it with ``blocked: true`` and the block reference.
``SafeSearch`` rewrites search requests (Google ``safe=active``, Bing ``adlt=strict``, DuckDuckGo
``kp=1``) and adds ``YouTube-Restrict: Strict`` for groups with ``safe_search: true``.
Both follow the place and time of the request: a group's ``off_site:`` / ``out_of_hours:`` keys in
``filtering.yaml`` (e.g. ``off_site: monitor_only``) apply to a school-owned device that came through the
tunnel (its tunnel address names it; nothing the device sends can) and outside school hours. A hit that
would be blocked on site but is not, there, is still recorded, and its incident says why it was not blocked.
Both fail open: a fault is logged and counted and the request goes on unchanged.

``Filtering(submit, policy)`` bundles the list addons in their order for ``addons/entry.py``; ``policy`` is
the process's one :class:`~netmon_proxy.settings.SharedPolicy` (groups of the school policy).
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import http
from netmon_proxy.context import BLOCKED_KEY, HITS_KEY, Submit, flow_host, flow_url, user_of
from netmon_proxy.images import ImageScanner
from netmon_proxy.settings import SharedPolicy
from netmon_proxy.urllists import LIFTED_KEY, FilterLists, UrlListChecker

from netmon.config.place import ON_SITE
from netmon.lists.blockpage import block_reference, render_block_page
from netmon.lists.safesearch import safe_search
from netmon.ops import counters
from netmon.scan.findings import Hit

log = logging.getLogger(__name__)


class SafeSearch:
    def __init__(self, state: FilterLists) -> None:
        self.state = state

    def request(self, flow: http.HTTPFlow) -> None:
        lists = self.state.lists
        if lists is None or flow.response is not None:
            return
        try:
            if not lists.policy.safe_search(self.state.names_for(user_of(flow))):
                return
            request = flow.request
            change = safe_search(
                flow_host(flow), request.path.split("?", 1)[0], request.query.items(multi=True)
            )
            if change is None:
                return
            if change.query is not None:
                request.query = list(change.query)  # type: ignore[assignment]
            for name, value in change.headers:
                request.headers[name] = value
            counters.incr(f"safesearch.{change.engine}")
        except Exception:  # noqa: BLE001 - fail open
            counters.incr("safesearch.error")
            log.exception("safe-search enforcement failed (request unchanged)")


class Blocker:
    """Serves the block page where the policy blocks a hit's category for the person's groups."""

    def __init__(self, state: FilterLists) -> None:
        self.state = state

    def request(self, flow: http.HTTPFlow) -> None:
        found = flow.metadata.get(HITS_KEY)
        lists = self.state.lists
        if not found or lists is None or flow.response is not None:
            return
        try:
            policy = lists.policy
            names = self.state.names_for(user_of(flow))
            categories = [e["category"] for e in found]
            blocked = policy.blocked(names, categories)
            if not blocked:
                if names.when != ON_SITE and policy.blocked(names, categories, ON_SITE):
                    # the school's policy for this place/time lifts a block: monitored, and said so
                    flow.metadata[LIFTED_KEY] = names.when.label
                    counters.incr("blocker.not-blocked." + ("off-site" if names.when.off_site else "hours"))
                return
            url = flow_url(flow)
            reference = block_reference(url)
            page = render_block_page(
                host=flow_host(flow),
                url=url,
                categories=blocked,
                lists=[e["file"] for e in found if e["category"] in blocked],
                review=policy.review,
                reference=reference,
            )
            flow.response = http.Response.make(
                403,
                page.encode("utf-8"),
                {
                    "Content-Type": "text/html; charset=utf-8",
                    "Cache-Control": "no-store",
                    "X-Netmon-Blocked": ",".join(blocked),
                },
            )
            flow.metadata[BLOCKED_KEY] = {"categories": list(blocked), "reference": reference}
            counters.incr("blocker.blocked")
            log.info("blocked %s on %s (reference %s)", ",".join(blocked), flow_host(flow), reference)
        except Exception:  # noqa: BLE001 - fail open: an error never blocks by accident
            counters.incr("blocker.error")
            log.exception("block decision failed (request allowed)")


class Filtering:
    """The list addons in order: lists/policy, safe search, URL lists, blocker, image scanner.

    ``host_hits`` is for ``TlsPolicy(host_hits=...)`` (SNI of passed-through connections).
    """

    def __init__(self, submit: Submit, policy: SharedPolicy | None = None) -> None:
        self.state = FilterLists(policy)
        self.urls = UrlListChecker(self.state, submit)
        self.images = ImageScanner(self.state, submit)
        self.addons: list[Any] = [
            self.state,
            SafeSearch(self.state),
            self.urls,
            Blocker(self.state),
            self.images,
        ]

    def host_hits(self, host: str) -> tuple[Hit, ...]:
        return self.urls.host_hits(host)
