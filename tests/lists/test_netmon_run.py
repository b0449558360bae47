"""Through `netmon run` (the product as a school runs it): --hash-list / --url-list, block page, export.

Skipped until addons/entry.py adds the list addons (netmon_proxy.blocking.Filtering) to its chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netmon.lists.imagehashing import ImageHashes, hash_image
from tests.e2e.conftest import REPO, Proxy, start_proxy
from tests.e2e.upstream import Page, Upstream, start_upstream
from tests.lists.images import encode, picture, resized_copy

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        "Filtering" not in (REPO / "addons" / "entry.py").read_text(),
        reason="addons/entry.py does not load the list addons (netmon_proxy.blocking.Filtering) yet",
    ),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, dict[str, bytes]]]:
    tmp = tmp_path_factory.mktemp("lists-run")
    upstream: Upstream = start_upstream(tmp_path_factory.mktemp("lists-upstream"))
    known = picture(41)
    images = {
        "known": encode(known, "JPEG", quality=90),
        "copy": resized_copy(known, 0.5, 45),
        "other": encode(picture(42), "JPEG"),
    }
    upstream.pages["/img/known.jpg"] = Page(images["known"], "image/jpeg")
    upstream.pages["/img/copy.bin"] = Page(images["copy"], "application/octet-stream")
    upstream.pages["/img/other.jpg"] = Page(images["other"], "image/jpeg")
    upstream.pages["/casino.html"] = Page(b"<html><body>roulette</body></html>")
    upstream.pages["/extreme.html"] = Page(b"<html><body>a forum</body></html>")
    hashes = hash_image(images["known"])
    assert isinstance(hashes, ImageHashes)
    (tmp / "hashes.csv").write_text(
        f"type,hash,category,severity,source\nsha256,{hashes.sha256},csam,5,IWF\n"
        f"phash,{hashes.phash},csam,5,IWF\n"
    )
    (tmp / "urls.csv").write_text(
        "type,value,category,severity,source\n"
        "url,pages.test/casino.html,gambling,3,school\n"
        "prefix,forum.test/extreme,terrorism,5,CTIRU\n"
    )
    (tmp / "filtering.yaml").write_text("groups:\n  everyone: {categories: {gambling: block}}\nut1: off\n")
    proxy = start_proxy(
        tmp,
        upstream,
        "--hash-list",
        str(tmp / "hashes.csv"),
        "--url-list",
        str(tmp / "urls.csv"),
        "--set",
        f"netmon_filtering={tmp / 'filtering.yaml'}",
    )
    yield proxy, images
    proxy.stop()
    upstream.close()


def test_block_page_and_incident(run: tuple[Proxy, dict[str, bytes]]) -> None:
    proxy, _ = run
    with proxy.client() as client:
        blocked = client.get("http://pages.test/casino.html?x=1")
        shown = client.get("https://forum.test/extreme.html")
    assert blocked.status_code == 403 and "gambling" in blocked.text
    assert shown.status_code == 200 and b"a forum" in shown.content
    rows = proxy.wait_incidents(
        lambda rows: (
            {"url-list"} <= {r["source"] for r in rows}
            and len([r for r in rows if r["source"] == "url-list"]) >= 2
        )
    )
    by_url = {r["url"]: r for r in rows if r["source"] == "url-list"}
    casino = by_url["http://pages.test/casino.html?x=1"]
    assert casino["category"] == "gambling" and casino["evidence"]["blocked"] is True
    extreme = by_url["https://forum.test/extreme.html"]
    assert (
        extreme["category"] == "terrorism"
        and extreme["severity"] == 5
        and extreme["evidence"]["blocked"] is False
    )


def test_image_hits_recorded_without_the_image(run: tuple[Proxy, dict[str, bytes]]) -> None:
    proxy, images = run
    with proxy.client() as client:
        for path in ("/img/known.jpg", "/img/copy.bin", "/img/other.jpg"):
            assert client.get(f"https://pages.test{path}").status_code == 200
    rows = proxy.wait_incidents(lambda rows: len([r for r in rows if r["source"] == "image"]) >= 2)
    found = {r["url"].rsplit("/", 1)[-1]: r for r in rows if r["source"] == "image"}
    assert set(found) == {"known.jpg", "copy.bin"}
    for row in found.values():
        assert row["severity"] == 5 and row["category"] == "csam" and row["phrase"] == "image hash match"
        assert row["evidence"]["sha256"] and row["evidence"]["phash"] and row["evidence"]["bytes"]
        assert not row.get("snapshot")
    needles = [images[k][len(images[k]) // 2 :][:64] for k in ("known", "copy")]
    for path in Path(proxy.state_dir).parent.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"image bytes in {path}"
