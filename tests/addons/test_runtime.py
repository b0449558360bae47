"""FreezeStartup: what start-up loaded is left out of full garbage collections; new garbage is not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from mitmproxy import hooks
from mitmproxy.test import taddons
from netmon_proxy.entry import build
from netmon_proxy.runtime import FreezeStartup


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_are_frozen_and_later_cycles_still_collected(unfrozen: None) -> None:
    loaded = Cycle()  # stands for what the addons loaded at start-up
    with taddons.context(FreezeStartup()) as tctx:
        tctx.master.addons.trigger(hooks.RunningHook())
    assert gc.get_freeze_count() > 0
    assert not any(o is loaded for o in gc.get_objects())  # full collections no longer walk it
    later = Cycle()  # garbage made while the proxy runs
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None


def test_it_runs_after_every_other_part() -> None:
    assert isinstance(build()[-1], FreezeStartup)
