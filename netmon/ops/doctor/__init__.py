"""``netmon doctor``: check a running gateway and say what is wrong and how to fix it.

Each check returns a :class:`Check` (``ok``, ``warn`` or ``fail``, a message and a fix). Checks read the
system (``/proc/sys``, ``nft``, sockets, files) and netmon's own configuration; none changes anything
(the database check writes inside a transaction that it rolls back).

- :mod:`.base`: :class:`Check`, :class:`Settings` and :func:`settings_from`;
- :mod:`.system`: forwarding, firewall rules, proxy and portal listening;
- :mod:`.services`: CA, store, SMTP, library, policy, forbidden options, counters.

The files the checks read live in :mod:`netmon.config.gateway`, the environment in
:mod:`netmon.config.settings`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from netmon.config.gateway import read_env_file as read_env_file
from netmon.ops.doctor.base import FAIL as FAIL
from netmon.ops.doctor.base import OK as OK
from netmon.ops.doctor.base import WARN as WARN
from netmon.ops.doctor.base import Check as Check
from netmon.ops.doctor.base import Settings as Settings
from netmon.ops.doctor.base import settings_from as settings_from
from netmon.ops.doctor.services import (
    check_ca,
    check_counters,
    check_database,
    check_forbidden_options,
    check_library,
    check_policy,
    check_smtp,
)
from netmon.ops.doctor.system import check_forwarding, check_portal, check_proxy, check_rules, nft_ruleset
from netmon.ops.doctor.tunnel import check_tunnel

__all__ = [
    "ALL_CHECKS",
    "as_json",
    "check_ca",
    "check_counters",
    "check_database",
    "check_forbidden_options",
    "check_forwarding",
    "check_library",
    "check_policy",
    "check_portal",
    "check_proxy",
    "check_rules",
    "check_smtp",
    "check_tunnel",
    "nft_ruleset",
    "run_checks",
]

ALL_CHECKS: tuple[Callable[[Settings], Check], ...] = (
    check_forwarding,
    check_rules,
    check_proxy,
    check_portal,
    check_ca,
    check_database,
    check_smtp,
    check_library,
    check_policy,
    check_forbidden_options,
    check_counters,
    check_tunnel,
)


def run_checks(s: Settings, checks: Iterable[Callable[[Settings], Check]] = ALL_CHECKS) -> list[Check]:
    results = []
    for check in checks:
        try:
            results.append(check(s))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            name = check.__name__.removeprefix("check_")
            results.append(Check(name, FAIL, f"the check itself failed: {exc.__class__.__name__}: {exc}"))
    return results


def as_json(results: Iterable[Check]) -> str:
    return json.dumps(
        [{"name": c.name, "status": c.status, "message": c.message, "fix": c.fix} for c in results], indent=1
    )
