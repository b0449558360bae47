"""FilterLists (the compiled lists and filtering policy) and UrlListChecker (URL/host list hits).

``FilterLists`` declares the list options, compiles ``policy/filtering.yaml`` plus every named list into
one immutable :class:`netmon.lists.filtering.Lists` snapshot at start-up (a bad file fails start-up with one
located line), and swaps in a new snapshot when a file changes (a bad edit keeps the old one, logged).

``UrlListChecker`` looks each request's URL up (exact URL, prefix, domain and imported UT1 categories),
leaves the hits in ``flow.metadata["netmon.list_hits"]`` for the Blocker, and submits one incident per
flow with source ``url-list`` once the flow ends (so the incident says whether it was blocked).
``host_hits(host)`` serves hostname-only lookups for traffic passed through undecrypted (SNI).
Fails open: a fault here is logged and counted, and the flow goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mitmproxy import ctx, exceptions, http
from netmon_proxy.context import (
    BLOCKED_KEY,
    HITS_KEY,
    SKIP_KEY,
    Submit,
    flow_context,
    flow_url,
)
from netmon_proxy.settings import SharedPolicy

from netmon.config import paths
from netmon.config.overlay import SITES_DIR
from netmon.config.place import Circumstances, Membership
from netmon.config.school import SchoolHours
from netmon.config.watch import FileWatcher, stamps
from netmon.errors import ConfigError
from netmon.lists.allow_audit import record_allow_changes
from netmon.lists.filtering import FILE_NAME, Lists, build_lists, load_filtering
from netmon.lists.urllists import UrlEntry
from netmon.lists.ut1 import default_path as ut1_default_path
from netmon.ops import counters
from netmon.scan.findings import Hit, ScanResult, TextFinding

log = logging.getLogger(__name__)

#: flow.metadata key: a block the policy lifts for this place/time (its label, e.g. "off site, in school
#: hours")
LIFTED_KEY = "netmon.block_lifted"

_LIST_OPTIONS = {
    "netmon_filtering",
    "netmon_hash_lists",
    "netmon_url_lists",
    "netmon_ut1",
    "netmon_policy",
    "netmon_site",
}


def entry_hit(entry: UrlEntry, matched: str = "") -> Hit:
    """A list entry as an explainable Hit (the phrase is the list value, the file and line its source)."""
    return Hit(
        phrase=entry.value,
        category=entry.category,
        severity=entry.severity,
        language="",
        library_file=entry.file,
        line=entry.line,
        start=0,
        end=0,
        matched_text=matched,
        rules=(f"{entry.type} entry from {entry.source or 'list'}",),
    )


def _entry_dict(entry: UrlEntry) -> dict[str, Any]:
    return {
        "type": entry.type,
        "value": entry.value,
        "category": entry.category,
        "severity": entry.severity,
        "source": entry.source,
        "file": entry.file,
        "line": entry.line,
    }


class FilterLists:
    """Holds the current :class:`Lists` snapshot; the other list addons read ``self.lists``."""

    def __init__(self, policy: SharedPolicy | None = None) -> None:
        self.lists: Lists | None = None
        self.policy = policy if policy is not None else SharedPolicy()
        self._groups_for: Callable[..., frozenset[str]] | None = None
        self._watcher: FileWatcher[Lists] | None = None
        self._auditor: threading.Thread | None = None
        self._audit_to: tuple[str, str] = ("", "")

    def load(self, loader: Any) -> None:
        loader.add_option(
            "netmon_filtering",
            str,
            "",
            "Filtering policy file (block/monitor per group and category, safe search, "
            "allow-list, named lists); empty: filtering.yaml in netmon_policy.",
        )
        loader.add_option(
            "netmon_hash_lists",
            Sequence[str],
            [],
            "Further known-image hash lists (CSV type,hash,category,severity,source).",
        )
        loader.add_option(
            "netmon_url_lists",
            Sequence[str],
            [],
            "Further URL lists (CSV type,value,category,severity,source).",
        )
        loader.add_option(
            "netmon_ut1",
            str,
            "",
            "Compiled UT1 list file (from `netmon lists import ut1`); empty: as the "
            "filtering policy says ('auto': <state dir>/lists/ut1.sqlite if imported).",
        )
        loader.add_option(
            "netmon_lists_reload",
            int,
            5,
            "Seconds between checks for changed policy/list files (0: never reload).",
        )

    def policy_file(self) -> Path:
        opts = ctx.options
        if opts.netmon_filtering:
            return Path(opts.netmon_filtering)
        base = getattr(opts, "netmon_policy", "") or str(paths.DEFAULT_POLICY_DIR)
        school = Path(base) / FILE_NAME
        # a policy directory without its own filtering.yaml gets netmon's default (monitor only)
        return school if school.is_file() else paths.DEFAULT_POLICY_DIR / FILE_NAME

    def site(self) -> str:
        """This gateway's site (``netmon_site``): its overlay ``sites/<site>/filtering.yaml`` applies."""
        return str(getattr(ctx.options, "netmon_site", "") or "")

    def _build(self) -> Lists:
        opts = ctx.options
        policy = load_filtering(self.policy_file(), self.site())
        ut1 = opts.netmon_ut1
        if not ut1 and policy.ut1 == "auto":
            ut1 = str(self._ut1_auto()) if self._ut1_auto().is_file() else "off"
        return build_lists(policy, opts.netmon_hash_lists, opts.netmon_url_lists, ut1)

    def _ut1_auto(self) -> Path:
        """The imported UT1 list: in this proxy's state directory, else where an import writes by default."""
        state = getattr(ctx.options, "netmon_state_dir", "")
        mine = Path(state) / "lists" / "ut1.sqlite" if state else ut1_default_path()
        # an import made without --state-dir lands in the default place ($NETMON_STATE_DIR or ./var)
        return mine if mine.is_file() or not ut1_default_path().is_file() else ut1_default_path()

    def _stamp(self) -> object:
        lists = self.lists
        if lists is None:
            return ()
        policy_file = self.policy_file()
        files = [str(policy_file), *lists.sources]
        if self.site():  # the site's overlay: its appearance, edit or removal is a change
            files.append(str(policy_file.parent / SITES_DIR / self.site() / policy_file.name))
        if lists.policy.ut1 == "auto" and not ctx.options.netmon_ut1:
            files.append(str(self._ut1_auto()))  # an import while running is picked up
        return stamps(files)

    def _reload(self) -> Lists:
        try:
            return self._build()
        except ConfigError:
            counters.incr("lists.reload-failed")
            raise
        except Exception as exc:  # noqa: BLE001 - a reload fault must never stop the proxy
            counters.incr("lists.reload-failed")
            raise ConfigError("lists", f"not reloaded: {exc.__class__.__name__}: {exc}") from exc

    def _reloaded(self, new: Lists) -> None:
        self._swap(new)
        counters.incr("lists.reloaded")
        log.warning("filtering policy and lists reloaded")
        self._audit()

    def configure(self, updated: set[str]) -> None:
        if not (_LIST_OPTIONS & updated) and self.lists is not None:
            return
        try:
            lists = self._build()
        except ConfigError as exc:
            raise exceptions.OptionsError(str(exc)) from exc
        self._swap(lists)
        self._groups_for = _policy_groups(self.policy, getattr(ctx.options, "netmon_policy", ""))

    def _swap(self, lists: Lists) -> None:
        old = self.lists
        self.lists = lists
        if old is not None and old.ut1 is not None and old.ut1 is not lists.ut1:
            old.ut1.close()
        log.info(
            "lists loaded: %d URL entries, %d image hashes, UT1 %s, %d blocking groups",
            len(lists.urls),
            len(lists.hashes),
            "on" if lists.ut1 else "off",
            sum(1 for g in lists.policy.groups.values() if "block" in g.actions.values()),
        )

    def running(self) -> None:
        opts = ctx.options
        self._audit_to = (getattr(opts, "netmon_db", ""), getattr(opts, "netmon_state_dir", ""))
        if self._groups_for is not None:
            self.policy.start()  # idempotent: the alert delivery may have started it already
        if self._auditor is None:  # allow-list changes since the last start, off the event loop
            self._auditor = threading.Thread(target=self._audit, name="netmon-lists-audit", daemon=True)
            self._auditor.start()
        if self._watcher is None:
            self._watcher = FileWatcher(
                self._stamp,
                self._reload,
                on_change=self._reloaded,
                interval=float(opts.netmon_lists_reload),
                name="netmon-lists-reload",
            ).start()

    def done(self) -> None:
        self.policy.stop()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._auditor is not None:
            self._auditor.join(timeout=5)
            self._auditor = None

    def _audit(self) -> None:
        """Audit events for allow-list entries added/removed since last recorded (never raises)."""
        db_url, state = self._audit_to
        lists = self.lists
        if not db_url or not state or lists is None:
            return
        try:
            added, removed = record_allow_changes(db_url, Path(state), lists.policy)
        except Exception as exc:  # noqa: BLE001 - the trail is retried at the next load; traffic unaffected
            counters.incr("lists.audit-failed")
            log.warning("allow-list changes not recorded in the audit trail yet: %s", exc)
            return
        if added or removed:
            log.info("allow-list audit: %d entries added, %d removed", added, removed)

    def names_for(self, user: dict[str, Any] | None, now: datetime | None = None) -> Membership:
        """Group names of a person: filtering's own (everyone, groups, year, role) + the school policy's,
        with the request's circumstances (off site: the identity came from the tunnel address, set by
        IdentityTagger from the device directory; out of hours: the school policy's hours, now)."""
        assert self.lists is not None
        extra: frozenset[str] = frozenset()
        if self._groups_for is not None and user:
            try:
                extra = self._groups_for(
                    user.get("user"),
                    user.get("role"),
                    user.get("year_group"),
                    tuple(user.get("groups") or ()),
                )
            except Exception:  # noqa: BLE001 - fall back to the identity's own groups
                counters.incr("lists.error.groups")
        return Membership(self.lists.policy.names_for(user, extra), self.circumstances(user, now))

    def circumstances(self, user: dict[str, Any] | None, now: datetime | None = None) -> Circumstances:
        off_site = bool(user) and user.get("off_site") is True  # type: ignore[union-attr]
        moment = now or datetime.now(UTC)
        school = self.policy.current
        if school is not None:
            in_hours = school.in_school_hours(moment)
        else:
            in_hours = SchoolHours().contains(moment.astimezone(_DEFAULT_TZ))
        return Circumstances(off_site=off_site, out_of_hours=not in_hours)


_DEFAULT_TZ = ZoneInfo("Europe/London")


def _policy_groups(shared: SharedPolicy, directory: str) -> Callable[..., frozenset[str]] | None:
    """``groups_for`` of the process's one school policy (policy/school.yaml): it asks the current
    snapshot at every call, so an edit of school.yaml reaches the filtering at once. None when the
    policy does not load (logged)."""
    if not directory or not (Path(directory) / "school.yaml").is_file():
        return None
    try:
        return shared.use(Path(directory), site=getattr(ctx.options, "netmon_site", None)).groups_for
    except Exception as exc:  # noqa: BLE001 - filtering still works on the identity's own groups
        log.warning("filtering: school policy groups unavailable (%s); using identity groups only", exc)
        return None


class UrlListChecker:
    """URL and hostname list hits -> incidents (source ``url-list``); fails open."""

    def __init__(self, state: FilterLists, submit: Submit) -> None:
        self.state = state
        self.submit = submit

    def host_hits(self, host: str) -> tuple[Hit, ...]:
        """Hits for a hostname alone (SNI of a passed-through connection); for TlsPolicy(host_hits=...)."""
        lists = self.state.lists
        if lists is None or not host:
            return ()
        try:
            return tuple(entry_hit(e, host) for e in lists.lookup_host(host))
        except Exception:  # noqa: BLE001 - fail open
            counters.incr("lists.error.lookup")
            log.exception("host list lookup failed (traffic unaffected)")
            return ()

    def request(self, flow: http.HTTPFlow) -> None:
        lists = self.state.lists
        if (
            lists is None
            or not lists.lists_urls  # nothing listed: no URL to work out (runs on every request)
            or flow.response is not None
            or flow.metadata.get(SKIP_KEY)
        ):
            return
        try:
            entries, allow = lists.check_url(flow_url(flow))
        except Exception:  # noqa: BLE001 - fail open
            counters.incr("lists.error.lookup")
            log.exception("URL list lookup failed (traffic unaffected)")
            return
        if allow is not None:
            if entries:  # the trail against over-blocking: which allow entry cleared which listing
                counters.incr("lists.allow-overrode")
                log.info(
                    "allow-list %s (%s) cleared %s on %s",
                    allow.where,
                    allow.reason,
                    ",".join(sorted({e.category for e in entries})),
                    flow.request.pretty_host,
                )
            return
        if entries:
            counters.incr("lists.url-hit")
            flow.metadata[HITS_KEY] = [_entry_dict(e) for e in entries]

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def _record(self, flow: http.HTTPFlow) -> None:
        found = flow.metadata.pop(HITS_KEY, None)
        if not found:
            return
        try:
            hits = tuple(entry_hit(UrlEntry(**e), e["value"]) for e in found)
            blocked = flow.metadata.get(BLOCKED_KEY)
            label = "blocked" if blocked else "monitored"
            top = found[0]
            evidence: dict[str, Any] = {
                "list": top["file"],
                "entry": top["value"],
                "type": top["type"],
                "blocked": bool(blocked),
            }
            if blocked:
                evidence.update(
                    block_reference=blocked["reference"], blocked_categories=blocked["categories"]
                )
            elif flow.metadata.get(LIFTED_KEY):
                evidence["not_blocked"] = f"{flow.metadata[LIFTED_KEY]}: the policy monitors here"
            result = ScanResult(
                context=flow_context(flow),
                findings=(TextFinding(source="url-list", text="", hits=hits, label=label),),
                evidence=evidence,
            )
        except Exception:  # noqa: BLE001 - fail open
            counters.incr("lists.error.record")
            log.exception("could not build a URL-list incident")
            return
        self.submit(result)
        log.info("url-list hit: %s (%s) on %s", top["category"], label, result.context.host)
