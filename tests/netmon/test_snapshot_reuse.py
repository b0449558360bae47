"""netmon.scan.snapshot: a page served again reuses the snapshot made for the same bytes, and only then."""

from __future__ import annotations

from netmon.scan import snapshot
from netmon.scan.extract import read_body
from netmon.scan.snapshot import make_snapshot, open_snapshot

PAGE = b"<html><body><p>I will kill myself</p><script>track()</script><p>%s</p></body></html>"


def _body(data: bytes, charset: str = "utf-8"):  # noqa: ANN202 - netmon.scan.extract.Body
    return read_body(data, f"text/html; charset={charset}")


def test_the_same_bytes_reuse_the_snapshot_and_other_bytes_do_not() -> None:
    first = make_snapshot(_body(PAGE % b"aaaa"), 1 << 20)
    again = make_snapshot(_body(PAGE % b"aaaa"), 1 << 20)  # equal bytes, another object
    assert first is not None and again is first
    other = make_snapshot(_body(PAGE % b"bbbb"), 1 << 20)  # same length, other bytes
    assert other is not None and other is not first
    assert b"bbbb" in open_snapshot(other[0]) and b"aaaa" not in open_snapshot(other[0])
    assert b"track()" not in open_snapshot(other[0])


def test_a_reused_snapshot_equals_a_fresh_one_and_respects_the_cap() -> None:
    body = _body(PAGE % (b"word " * 500))
    made = make_snapshot(body, 1 << 20)
    assert made == snapshot._make_snapshot(body, 1 << 20)
    capped = make_snapshot(body, 200)  # another cap: not the same snapshot
    assert capped is not None and len(open_snapshot(capped[0])) <= 200
    assert make_snapshot(_body(PAGE % b"x", "iso-8859-1"), 1 << 20) == snapshot._make_snapshot(
        _body(PAGE % b"x", "iso-8859-1"), 1 << 20
    )


def test_only_a_few_recent_small_bodies_are_kept() -> None:
    for i in range(snapshot.RECENT * 3):
        make_snapshot(_body(PAGE % (b"p" * i)), 1 << 20)
    assert len(snapshot._recent) <= snapshot.RECENT
    big = _body(PAGE % (b"x" * (snapshot.RECENT_MAX_BYTES + 1)))
    make_snapshot(big, 1 << 20)
    assert all(len(data) <= snapshot.RECENT_MAX_BYTES for data, _ in snapshot._recent.values())


def test_the_sanitiser_and_compressor_kept_per_thread_make_what_fresh_ones_make() -> None:
    import threading

    import nh3
    import zstandard

    html = (PAGE % b'<a href="http://x.example/">link</a><img src="t.gif" alt="pic" onerror="f()">').decode()
    fresh = nh3.clean(
        html,
        tags=set(snapshot.KEPT_TAGS),
        clean_content_tags=set(snapshot.REMOVED_TAGS),
        attributes={k: set(v) for k, v in snapshot.KEPT_ATTRS.items()},
        strip_comments=True,
        link_rel=None,
        url_schemes=set(),
    )
    made: list[str] = []
    for _ in range(2):
        made.append(snapshot.sanitise_html(html))  # the second reuses this thread's sanitiser
    thread = threading.Thread(target=lambda: made.append(snapshot.sanitise_html(html)))
    thread.start()
    thread.join()
    assert len(made) == 3 and all(fresh in m for m in made)
    assert "http://x.example" not in fresh and "onerror" not in fresh and "track()" not in fresh
    body = _body(PAGE % (b"word " * 300))
    data = snapshot.sanitise_html(body.text).encode()
    for _ in range(2):
        got = snapshot._make_snapshot(body, 1 << 20)
        assert got == (zstandard.ZstdCompressor(level=3).compress(data), "text/html")
