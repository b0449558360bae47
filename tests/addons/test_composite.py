"""Composite: netmon's addons as one mitmproxy addon, with mitmproxy's own addon manager."""

from __future__ import annotations

import asyncio
import logging

import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import taddons, tflow
from netmon_proxy.composite import Composite
from netmon_proxy.entry import build


class Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def request(self, flow: object) -> None:
        self.calls.append(f"{self.name}.request")


class AsyncPart:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def request(self, flow: object) -> None:
        await asyncio.sleep(0)
        self.calls.append("async.request")


class Broken:
    def request(self, flow: object) -> None:
        raise RuntimeError("boom")


class Nested:
    def __init__(self, calls: list[str]) -> None:
        self.addons = [Recorder("nested", calls)]


class StrictOption:
    def load(self, loader: object) -> None:
        loader.add_option("netmon_test_level", int, 1, "A test option.")  # type: ignore[attr-defined]

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        if "netmon_test_level" in updated and ctx.options.netmon_test_level > 5:
            raise exceptions.OptionsError("netmon_test_level: must be at most 5")


async def test_every_part_runs_in_order_async_ones_awaited_and_a_fault_skips_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    composite = Composite(
        [Recorder("a", calls), Broken(), Nested(calls), AsyncPart(calls), Recorder("z", calls)]
    )
    with taddons.context(composite) as tctx:
        with caplog.at_level(logging.ERROR):
            await tctx.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
    assert calls == ["a.request", "nested.request", "async.request", "z.request"]
    assert "netmon addon Broken failed in request" in caplog.text


def test_a_bad_option_still_stops_configuration() -> None:
    composite = Composite([StrictOption()])
    with taddons.context(composite) as tctx:
        tctx.configure(composite, netmon_test_level=3)
        with pytest.raises(exceptions.OptionsError, match="at most 5"):
            tctx.configure(composite, netmon_test_level=9)


def test_mitmproxy_sees_one_addon_with_only_the_hooks_netmon_uses() -> None:
    composite = Composite(build())
    with taddons.context(composite) as tctx:
        names = [type(a).__name__ for a in tctx.master.addons.chain]
    assert names.count("Composite") == 1 and not hasattr(composite, "addons")
    assert {type(p).__name__ for p in composite.parts} >= {"PhraseScanner", "IncidentRecorder", "Filtering"}
    assert callable(composite.response) and callable(composite.requestheaders)
    assert not hasattr(composite, "tcp_message")  # no part handles raw TCP: mitmproxy skips us there


class WaitsSometimes:
    """A sync hook that returns an awaitable only for flows it must hold (like PortalGate)."""

    def __init__(self, calls: list[str], fail: bool = False) -> None:
        self.calls, self.fail = calls, fail

    def request(self, flow: http.HTTPFlow) -> object:
        if not flow.metadata.get("hold"):
            self.calls.append("waits.request")
            return None
        return self._hold()

    async def _hold(self) -> None:
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("lookup failed")
        self.calls.append("waits.held")


async def test_a_page_that_need_not_wait_costs_no_coroutine() -> None:
    calls: list[str] = []
    composite = Composite([Recorder("a", calls), WaitsSometimes(calls), Recorder("z", calls)])
    assert composite.request(tflow.tflow()) is None  # a plain call, nothing for mitmproxy to await
    assert calls == ["a.request", "waits.request", "z.request"]


@pytest.mark.parametrize("fail", [False, True])
async def test_a_part_that_must_wait_holds_the_parts_after_it(
    fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    composite = Composite([Recorder("a", calls), WaitsSometimes(calls, fail), Recorder("z", calls)])
    flow = tflow.tflow()
    flow.metadata["hold"] = True
    with taddons.context(composite) as tctx:
        with caplog.at_level(logging.ERROR):
            await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
    # the parts after the one that waited ran after its wait, in order; its failure skipped nothing
    assert calls == (["a.request", "z.request"] if fail else ["a.request", "waits.held", "z.request"])
    assert ("netmon addon WaitsSometimes failed in request" in caplog.text) is fail
