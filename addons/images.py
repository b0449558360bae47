"""ImageScanner: hash images in responses off the event loop and match them against known-image lists.

An image is recognised by its content type or by sniffing its first bytes. Hashing (decode + pHash/dHash
+ digests) runs in a small thread pool; the event loop only hands over a reference to the bytes the flow
already holds. A match becomes a ScanResult with one Hit ("image hash match", category and severity from
the list, the list file and line) and evidence {sha256, sha1, md5, phash, dhash, bytes, list, line, type,
distance, url}. The image itself is NEVER stored, written, logged or attached anywhere.

Normally the flow is not delayed at all. Only where the filtering policy blocks a hash-list category for
the person's groups does the flow wait for its hash (the event loop does not), so a match can be replaced
by a plain 403 before the device receives it.

Fails open: a full queue, a bomb, a broken image or a worker fault is a counted skip
(``image.skipped.<reason>``, ``image.error``); traffic flows on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mitmproxy import ctx, exceptions, http
from netmon_proxy.context import BLOCKED_KEY, Submit, flow_context, flow_url, user_of

from netmon.lists.blockpage import block_reference
from netmon.lists.hashindex import HashIndex, HashMatch
from netmon.lists.imagehashing import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageHashes,
    ImageLimits,
    ImageSkip,
    hash_image,
    looks_like_image,
)
from netmon.ops import counters
from netmon.scan.findings import FlowContext, Hit, ScanResult, TextFinding

if TYPE_CHECKING:
    from netmon_proxy.urllists import FilterLists

log = logging.getLogger(__name__)

PHRASE = "image hash match"
Outcome = tuple[ImageHashes | ImageSkip, HashMatch | None]


def hash_and_match(data: bytes, limits: ImageLimits, index: HashIndex) -> Outcome:
    """Worker job: hash one image and look it up (plain data in, plain data out)."""
    hashes = hash_image(data, limits)
    if isinstance(hashes, ImageSkip):
        return hashes, None
    return hashes, index.match(hashes)


def image_result(
    context: FlowContext, hashes: ImageHashes, match: HashMatch, blocked: dict[str, Any] | None = None
) -> ScanResult:
    """The incident for a matched image: hashes, size, list and URL; never the image."""
    entry = match.entry
    how = f"{entry.type} Hamming distance {match.distance}" if entry.perceptual else f"{entry.type} exact"
    hit = Hit(
        phrase=PHRASE,
        category=entry.category,
        severity=entry.severity,
        language="",
        library_file=entry.file,
        line=entry.line,
        start=0,
        end=0,
        matched_text="",
        rules=(how, f"list source {entry.source or 'unknown'}"),
    )
    evidence: dict[str, Any] = {
        "sha256": hashes.sha256,
        "sha1": hashes.sha1,
        "md5": hashes.md5,
        "phash": hashes.phash,
        "dhash": hashes.dhash,
        "bytes": hashes.bytes,
        "width": hashes.width,
        "height": hashes.height,
        "list": entry.file,
        "line": entry.line,
        "type": entry.type,
        "distance": match.distance,
        "list_source": entry.source,
        "url": context.url,
        "blocked": bool(blocked),
    }
    if blocked:
        evidence["block_reference"] = blocked["reference"]
    finding = TextFinding(source="image", text="", hits=(hit,), label=f"{entry.type} match")
    return ScanResult(context=context, findings=(finding,), evidence=evidence)


class ImageScanner:
    def __init__(self, state: FilterLists, submit: Submit) -> None:
        self.state = state
        self.submit = submit
        self.pool: ThreadPoolExecutor | None = None
        self._inflight = 0
        self._lock = threading.Lock()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "netmon_image_max_bytes",
            int,
            DEFAULT_MAX_BYTES,
            "Largest image (bytes) that is hashed; bigger ones are skipped (counted).",
        )
        loader.add_option(
            "netmon_image_max_pixels",
            int,
            DEFAULT_MAX_PIXELS,
            "Largest image (width x height) that is decoded; bigger is a decompression bomb.",
        )
        loader.add_option("netmon_image_workers", int, 2, "Threads that hash images off the event loop.")
        loader.add_option(
            "netmon_image_queue",
            int,
            256,
            "Images waiting to be hashed before further ones are skipped (counted).",
        )

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        if "netmon_image_workers" in updated and not 1 <= opts.netmon_image_workers <= 32:
            raise exceptions.OptionsError(
                f"netmon_image_workers: must be 1-32 (got {opts.netmon_image_workers})"
            )
        for name in ("netmon_image_max_bytes", "netmon_image_max_pixels", "netmon_image_queue"):
            if name in updated and getattr(opts, name) < 1:
                raise exceptions.OptionsError(f"{name}: must be at least 1 (got {getattr(opts, name)})")

    def running(self) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(
                ctx.options.netmon_image_workers, thread_name_prefix="netmon-image"
            )

    def done(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)  # finish in-flight images; their results reach the recorder
            self.pool = None

    def _limits(self) -> ImageLimits:
        opts = ctx.options
        return ImageLimits(opts.netmon_image_max_bytes, opts.netmon_image_max_pixels)

    def response(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Hash an image response off the loop. Sync, so that a page costs no coroutine: only a flow
        that must wait for its hash (blocking applies to the person) returns an awaitable, which
        mitmproxy awaits before the response goes on."""
        lists = self.state.lists
        response = flow.response
        if (
            lists is None
            or response is None
            or not len(lists.hashes)
            or self.pool is None
            or flow.metadata.get(BLOCKED_KEY)
        ):
            return
        try:
            data = response.raw_content
            if data is None:
                counters.incr("image.skipped.streamed")
                return
            if not looks_like_image(response.headers.get("content-type"), data[:16]):
                return
            if response.headers.get("content-encoding"):
                data = response.get_content(strict=False) or b""
            names = self.state.names_for(user_of(flow))
            must_wait = bool(lists.policy.blocked(names, lists.hashes.categories))
            context = flow_context(flow)
        except Exception:  # noqa: BLE001 - fail open
            counters.incr("image.error")
            log.exception("could not prepare an image for hashing (traffic unaffected)")
            return
        with self._lock:
            if self._inflight >= ctx.options.netmon_image_queue:
                counters.incr("image.skipped.queue-full")
                return
            self._inflight += 1
        try:
            future = self.pool.submit(hash_and_match, data, self._limits(), lists.hashes)
        except RuntimeError:
            with self._lock:
                self._inflight -= 1
            counters.incr("image.skipped.not-running")
            return
        if not must_wait:
            future.add_done_callback(lambda f: self._finished(f, context, None))
            return None
        return self._hold(flow, future, lists, names, context)

    async def _hold(
        self, flow: http.HTTPFlow, future: Future[Outcome], lists: Any, names: Any, context: FlowContext
    ) -> None:
        """Blocking applies to this person: hold this flow (not the loop) until the hash is known."""
        blocked: dict[str, Any] | None = None
        try:
            _hashes, match = await asyncio.wrap_future(future)
        except Exception:  # noqa: BLE001 - counted in _finished; fail open
            match = None
        if match is not None and lists.policy.blocked(names, [match.entry.category]):
            reference = block_reference(flow_url(flow))
            blocked = {"categories": [match.entry.category], "reference": reference}
            flow.response = http.Response.make(
                403,
                f"Image blocked by the school network. Reference: {reference}\n".encode(),
                {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
            )
            counters.incr("image.blocked")
        self._finished(future, context, blocked)

    def _finished(
        self,
        future: Future[Outcome],
        context: FlowContext,
        blocked: dict[str, Any] | None,
    ) -> None:
        """Runs in a worker thread (or on the loop after a wait); submits a match, counts the rest."""
        with self._lock:
            self._inflight -= 1
        if future.cancelled():
            counters.incr("image.skipped.cancelled")
            return
        error = future.exception()
        if error is not None:
            counters.incr("image.error")
            log.error("image hashing failed: %s (traffic unaffected)", type(error).__name__)
            return
        hashes, match = future.result()
        if isinstance(hashes, ImageSkip):
            counters.incr(f"image.skipped.{hashes.reason}")
            return
        counters.incr("image.hashed")
        if match is None:
            return
        counters.incr("image.matched")
        log.warning(
            "known-image match: category %s, list %s line %d, host %s",
            match.entry.category,
            match.entry.file,
            match.entry.line,
            context.host,
        )
        self.submit(image_result(context, hashes, match, blocked))
