"""One mitmproxy addon that runs all of netmon's addons, in order.

mitmproxy looks every event up on every addon in its tree (``traverse`` + ``getattr``), for each of the
dozen events of every request. netmon's fourteen addons on top of mitmdump's own thirty-odd made that
walk about 40% longer, which cost more of the proxy's CPU than all of netmon's hooks together. As one
addon, netmon is one lookup per event, and only the hooks some part implements exist at all.

Behaviour is the same as a list of addons: options, lifecycle hooks and events reach every part in
order, async hooks are awaited. A hook stays a plain call while its parts are: a part may return an
awaitable only when it must wait (``PortalGate`` with the portal on, ``ImageScanner`` holding an image
for its hash), and then the rest of the parts run in a coroutine that mitmproxy awaits. So an ordinary
page creates no coroutine in netmon. One difference, on purpose: a part that raises in an event hook is
logged and the parts after it still run (mitmproxy would skip the rest of the list); ``load`` and
``configure`` errors still propagate, so a bad option stops start-up with its message.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mitmproxy.addons  # noqa: F401 - every built-in hook class is registered
import mitmproxy.proxy.layers  # noqa: F401
from mitmproxy import hooks
from mitmproxy.addonmanager import traverse

log = logging.getLogger(__name__)

#: Hooks whose errors must reach mitmproxy (a bad option is a start-up error, not a log line).
_PROPAGATE = frozenset({"load", "configure"})


class Composite:
    """``Composite(parts)``: the parts (and any nested ``addons`` of theirs) as one addon."""

    def __init__(self, parts: Sequence[object], name: str = "netmon") -> None:
        self.name = name
        self.parts = list(traverse(parts))  # not called "addons": mitmproxy must not walk into them
        for hook in hooks.all_hooks:
            impls = [
                (part, getattr(part, hook)) for part in self.parts if callable(getattr(part, hook, None))
            ]
            if impls:
                setattr(self, hook, _dispatcher(hook, impls))


def _dispatcher(hook: str, impls: list[tuple[object, Callable[..., Any]]]) -> Callable[..., Any]:
    funcs = [f for _, f in impls]
    if hook in _PROPAGATE:

        def propagate(*args: Any) -> None:
            for func in funcs:
                func(*args)

        return propagate

    if any(inspect.iscoroutinefunction(f) for f in funcs):

        async def dispatch_async(*args: Any) -> None:
            await _rest(impls, hook, 0, args)

        return dispatch_async

    def dispatch(*args: Any) -> Awaitable[None] | None:
        # sync while every part is: a part that returns an awaitable (a hook that must wait, say for the
        # session store) hands the rest of the list to a coroutine, which mitmproxy awaits
        for i, (part, func) in enumerate(impls):
            try:
                result = func(*args)
            except Exception:  # noqa: BLE001 - one part's fault must not skip the others
                log.exception("netmon addon %s failed in %s", type(part).__name__, hook)
                continue
            if result is not None and inspect.isawaitable(result):
                return _rest(impls, hook, i + 1, args, (result, part))
        return None

    return dispatch


async def _rest(
    impls: list[tuple[object, Callable[..., Any]]],
    hook: str,
    start: int,
    args: tuple[Any, ...],
    pending: tuple[Awaitable[None], object] | None = None,
) -> None:
    """Await ``pending`` (a part's awaitable), then run the parts from ``start`` on, awaiting each."""
    if pending is not None:
        awaitable, part = pending
        try:
            await awaitable
        except Exception:  # noqa: BLE001 - one part's fault must not skip the others
            log.exception("netmon addon %s failed in %s", type(part).__name__, hook)
    for part, func in impls[start:]:
        try:
            result = func(*args)
            if result is not None and inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - one part's fault must not skip the others
            log.exception("netmon addon %s failed in %s", type(part).__name__, hook)
