"""The list addons with mitmproxy's taddons/tflow: real hooks, real thread pool, a collecting submit."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from netmon_proxy.blocking import Filtering
from netmon_proxy.context import HITS_KEY

from netmon.lists.imagehashing import hash_image
from netmon.ops import counters
from netmon.scan.findings import ScanResult
from tests.lists.images import bomb_png, encode, picture, resized_copy

URLS = """type,value,category,severity,source
domain,casino.example,gambling,2,local
url,bad.example/attack.html,terrorism,5,CTIRU
"""


class Collect:
    def __init__(self) -> None:
        self.results: list[ScanResult] = []
        self.event = threading.Event()

    def __call__(self, result: ScanResult) -> None:
        self.results.append(result)
        self.event.set()


async def respond(addon: Any, flow: Any) -> None:
    """What mitmproxy does with the hook: call it, and await what it returns (an awaitable only when
    the flow must wait for its image hash)."""
    result = addon.images.response(flow)
    if result is not None:
        await result


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    known = picture(21)
    data = encode(known, "JPEG", quality=90)
    hashes = hash_image(data)
    assert not isinstance(hashes, type(None))
    (tmp_path / "hashes.csv").write_text(
        "type,hash,category,severity,source\n"
        f"sha256,{hashes.sha256},csam,5,IWF\n"  # type: ignore[union-attr]
        f"phash,{hashes.phash},csam,5,IWF\n"  # type: ignore[union-attr]
    )
    (tmp_path / "urls.csv").write_text(URLS)
    (tmp_path / "filtering.yaml").write_text(
        "groups:\n"
        "  year7: {categories: {gambling: block, csam: block}, safe_search: true}\n"
        "  staff: {categories: {gambling: monitor}}\n"
        "allow:\n  - {domain: ok.casino.example, reason: 'school lottery project'}\n"
        "ut1: off\n"
    )
    (tmp_path / "known.jpg").write_bytes(data)
    (tmp_path / "copy.jpg").write_bytes(resized_copy(known))
    return {"dir": tmp_path}


def _flow(url: str, groups: list[str] | None = None) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make("GET", url)
    f.request.headers["Host"] = f.request.host
    if groups is not None:
        f.metadata["netmon.user"] = {"user": "pupil1", "role": "pupil", "year_group": None, "groups": groups}
    return f


def _options(tmp: Path) -> dict[str, object]:
    return {
        "netmon_filtering": str(tmp / "filtering.yaml"),
        "netmon_url_lists": [str(tmp / "urls.csv")],
        "netmon_hash_lists": [str(tmp / "hashes.csv")],
        "netmon_lists_reload": 0,
    }


async def _run_request(addon: Filtering, flow: http.HTTPFlow) -> None:
    for a in addon.addons:
        hook = getattr(a, "request", None)
        if hook is not None:
            hook(flow)
    if flow.response is None:
        flow.response = http.Response.make(200, b"<html>page</html>", {"content-type": "text/html"})
    for a in addon.addons:
        hook = getattr(a, "response", None)
        if hook is not None:
            result = hook(flow)
            if asyncio.iscoroutine(result):
                await result


async def test_blocking_group_gets_block_page_and_incident(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        f = _flow("https://www.casino.example/slots?user=1", ["year7"])
        await _run_request(addon, f)
        assert f.response is not None and f.response.status_code == 403
        assert b"gambling" in f.response.content and b"www.casino.example" in f.response.content
        (result,) = collect.results
        assert result.findings[0].source == "url-list"
        assert result.evidence["blocked"] is True and result.evidence["block_reference"]
        assert result.hits[0].category == "gambling" and result.hits[0].library_file.endswith("urls.csv")
        assert result.hits[0].line == 2 and result.context.user == "pupil1"


async def test_monitor_only_group_gets_page_and_incident(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        for groups in (["staff"], None):
            f = _flow("https://www.casino.example/slots", groups)
            await _run_request(addon, f)
            assert f.response is not None and f.response.status_code == 200
        assert len(collect.results) == 2
        assert all(r.evidence["blocked"] is False for r in collect.results)


async def test_allow_list_wins(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        f = _flow("https://ok.casino.example/", ["year7"])
        await _run_request(addon, f)
        assert f.response is not None and f.response.status_code == 200
        assert collect.results == [] and HITS_KEY not in f.metadata
        assert counters.snapshot().get("lists.allow-overrode", 0) >= 1


async def test_host_hits_for_sni(files: dict[str, Path]) -> None:
    addon = Filtering(Collect())
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        (hit,) = addon.host_hits("cdn.casino.example")
        assert hit.category == "gambling" and hit.matched_text == "cdn.casino.example"
        assert addon.host_hits("bad.example") == ()  # a URL entry needs the full URL
        assert addon.host_hits("ok.casino.example") == ()


async def test_safe_search_for_chosen_groups_only(files: dict[str, Path]) -> None:
    addon = Filtering(Collect())
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        f = _flow("https://www.google.com/search?q=cats&safe=off", ["year7"])
        await _run_request(addon, f)
        assert f.request.query.get_all("safe") == ["active"] and f.request.query["q"] == "cats"
        y = _flow("https://www.youtube.com/watch?v=1", ["year7"])
        await _run_request(addon, y)
        assert y.request.headers["YouTube-Restrict"] == "Strict"
        s = _flow("https://www.google.com/search?q=cats", ["staff"])
        await _run_request(addon, s)
        assert "safe" not in s.request.query and "YouTube-Restrict" not in s.request.headers


def _image_flow(url: str, body: bytes, ctype: str, groups: list[str] | None) -> http.HTTPFlow:
    f = _flow(url, groups)
    f.response = http.Response.make(200, body, {"content-type": ctype})
    return f


async def test_image_exact_and_perceptual_hits(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        addon.images.running()
        known = (files["dir"] / "known.jpg").read_bytes()
        copy = (files["dir"] / "copy.jpg").read_bytes()
        other = encode(picture(99), "PNG")
        await respond(addon, _image_flow("https://img.test/a.jpg?x=1", known, "image/jpeg", ["staff"]))
        # mislabelled: sniffed by its bytes
        await respond(addon, _image_flow("https://img.test/b", copy, "application/octet-stream", None))
        await respond(addon, _image_flow("https://img.test/c.png", other, "image/png", None))
        addon.images.done()
        assert len(collect.results) == 2
        exact, near = sorted(collect.results, key=lambda r: r.context.url)
        for r in (exact, near):
            (hit,) = r.hits
            assert (hit.phrase, hit.category, hit.severity, hit.matched_text) == (
                "image hash match",
                "csam",
                5,
                "",
            )
            assert hit.library_file.endswith("hashes.csv")
            assert r.findings[0].source == "image" and r.findings[0].text == "" and r.snapshot is None
            assert set(r.evidence) >= {"sha256", "md5", "phash", "bytes", "list", "url"}
            assert not any(isinstance(v, bytes) for v in r.evidence.values())
        assert exact.evidence["type"] == "sha256" and exact.hits[0].line == 2
        assert (
            near.evidence["type"] == "phash"
            and near.hits[0].line == 3
            and near.evidence["bytes"] == len(copy)
        )


async def test_image_blocked_for_blocking_group(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        addon.images.running()
        known = (files["dir"] / "known.jpg").read_bytes()
        f = _image_flow("https://img.test/a.jpg", known, "image/jpeg", ["year7"])
        await respond(addon, f)
        assert f.response is not None and f.response.status_code == 403 and known not in f.response.content
        addon.images.done()
        (result,) = collect.results
        assert result.evidence["blocked"] is True


async def test_bomb_and_broken_images_are_counted_skips(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    counters.reset()
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))
        addon.images.running()
        await respond(addon, _image_flow("https://img.test/bomb.png", bomb_png(), "image/png", None))
        await respond(
            addon, _image_flow("https://img.test/x.jpg", b"\xff\xd8\xff\xe0garbage", "image/jpeg", ["year7"])
        )
        addon.images.done()
    snap = counters.snapshot()
    assert snap.get("image.skipped.decompression-bomb") == 1
    assert snap.get("image.skipped.broken-image") == 1
    assert collect.results == []


async def test_bad_list_fails_startup_with_location(files: dict[str, Path]) -> None:
    from mitmproxy import exceptions

    bad = files["dir"] / "bad.csv"
    bad.write_text("type,hash,category,severity,source\nmd5,zz,csam,5,x\n")
    addon = Filtering(Collect())
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match=r"bad.csv:2: md5 hash must be 32 hex digits"):
            tctx.configure(addon.state, **{**_options(files["dir"]), "netmon_hash_lists": [str(bad)]})


async def test_reload_keeps_old_lists_on_a_bad_edit(files: dict[str, Path]) -> None:
    import os
    import time

    addon = Filtering(Collect())
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **{**_options(files["dir"]), "netmon_lists_reload": 1})
        addon.state.running()
        try:
            urls = files["dir"] / "urls.csv"
            urls.write_text(URLS + "domain,newsite.example,gambling,2,local\n")
            os.utime(urls, (time.time() + 5, time.time() + 5))
            deadline = time.monotonic() + 10
            while not addon.host_hits("newsite.example") and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert addon.host_hits("newsite.example")
            urls.write_text("type,value,category,severity,source\nbroken line\n")
            os.utime(urls, (time.time() + 10, time.time() + 10))
            await asyncio.sleep(2.5)
            assert addon.host_hits("newsite.example"), "a bad edit must keep the previous lists"
        finally:
            addon.state.done()


async def test_fails_open_when_lookup_breaks(files: dict[str, Path]) -> None:
    collect = Collect()
    addon = Filtering(collect)
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **_options(files["dir"]))

        def broken(url: str) -> tuple[()]:
            raise RuntimeError("boom")

        object.__setattr__(addon.state.lists, "check_url", broken)
        f = _flow("https://www.casino.example/", ["year7"])
        await _run_request(addon, f)
        assert f.response is not None and f.response.status_code == 200


async def test_hooks_never_block_the_event_loop(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio debug mode: no hook step over 100 ms (loaded 2-core machine); 40 images vs 200k hashes."""
    import logging

    import numpy as np

    rng = np.random.default_rng(3)
    big = files["dir"] / "big.csv"
    with big.open("w") as fh:
        fh.write("type,hash,category,severity,source\n")
        for v in rng.integers(0, 2**63, 200_000, dtype=np.int64).tolist():
            fh.write(f"phash,{v:016x},csam,5,bench\n")
    loop = asyncio.get_running_loop()
    collect = Collect()
    addon = Filtering(collect)
    caplog.set_level(logging.WARNING, logger="asyncio")
    with taddons.context(addon) as tctx:
        tctx.configure(addon.state, **{**_options(files["dir"]), "netmon_hash_lists": [str(big)]})
        addon.images.running()
        blobs = [encode(picture(100 + i), "JPEG") for i in range(8)]
        flows = [
            _image_flow(f"https://img.test/{i}.jpg", blobs[i % 8], "image/jpeg", None) for i in range(40)
        ]
        requests = [_flow(f"https://www.casino.example/{i}", ["staff"]) for i in range(40)]
        gc.collect()
        gc.freeze()  # a full GC of the pytest process is not a hook's doing
        loop.set_debug(True)
        loop.slow_callback_duration = 0.1
        try:
            await asyncio.gather(*(respond(addon, f) for f in flows))
            for f in requests:  # in mitmproxy each hook call is its own task
                await asyncio.create_task(_run_request(addon, f))
            await asyncio.to_thread(addon.images.done)
        finally:
            loop.set_debug(False)
            gc.unfreeze()
    # only the hooks' own steps count (the test body builds flows and gathers between them)
    slow = [
        m for m in (r.getMessage() for r in caplog.records) if "took" in m and "test_hooks_never" not in m
    ]
    assert not slow, slow
    assert counters.snapshot().get("image.hashed", 0) >= 40


async def test_ut1_auto_uses_the_proxy_state_dir_and_an_import_while_running(files: dict[str, Path]) -> None:
    import time

    from netmon_proxy.settings import Settings

    from netmon.lists.ut1 import import_ut1

    src = files["dir"] / "blacklists" / "gambling"
    src.mkdir(parents=True)
    (src / "usage").write_text("black\n")
    (src / "domains").write_text("roulette.example\n")
    (files["dir"] / "auto.yaml").write_text("ut1: auto\n")
    state = files["dir"] / "state"
    addon = Filtering(Collect())
    with taddons.context(Settings(), addon) as tctx:
        tctx.configure(
            addon.state,
            **{
                **_options(files["dir"]),
                "netmon_filtering": str(files["dir"] / "auto.yaml"),
                "netmon_state_dir": str(state),
                "netmon_lists_reload": 1,
            },
        )
        assert addon.host_hits("www.roulette.example") == ()  # nothing imported yet
        addon.state.running()
        try:
            import_ut1(files["dir"] / "blacklists", state / "lists" / "ut1.sqlite")
            deadline = time.monotonic() + 10
            while not addon.host_hits("www.roulette.example") and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            (hit,) = addon.host_hits("www.roulette.example")
            assert hit.library_file == "ut1:gambling/domains"
        finally:
            addon.state.done()


async def test_policy_dir_without_filtering_yaml_falls_back_to_monitor_only(tmp_path: Path) -> None:
    from mitmproxy import exceptions
    from netmon_proxy.settings import Settings

    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    addon = Filtering(Collect())
    with taddons.context(Settings(), addon) as tctx:
        tctx.configure(addon.state, netmon_policy=str(policy_dir), netmon_lists_reload=0)
        assert addon.state.lists is not None and not addon.state.lists.policy.blocks_anything
        with pytest.raises(exceptions.OptionsError, match="file not found"):
            tctx.configure(addon.state, netmon_filtering=str(tmp_path / "missing.yaml"))


async def test_running_proxy_records_allow_list_in_the_audit_trail(
    files: dict[str, Path], store_url: str
) -> None:
    import time

    from netmon_proxy.settings import Settings

    from tests.lists.test_filtering import _audit_rows

    addon = Filtering(Collect())
    with taddons.context(Settings(), addon) as tctx:
        tctx.configure(
            addon.state,
            **{
                **_options(files["dir"]),
                "netmon_db": store_url,
                "netmon_state_dir": str(files["dir"] / "state"),
            },
        )
        addon.state.running()
        try:
            deadline = time.monotonic() + 10
            while not _audit_rows(store_url) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            addon.state.done()
    (row,) = _audit_rows(store_url)
    assert row[0] == "filtering.allow.added" and row[2] == "domain:ok.casino.example"
    assert row[3]["reason"] == "school lottery project"
