"""Frames between the proxy and its scan workers: one length-prefixed pickle each, page bodies carried as
out-of-band buffers (no copy into the pickle), written with ``os.writev`` as pieces (no joined copy)."""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterator

_HEADER = struct.Struct(">I")
#: A frame larger than this is a corrupt stream, not a message (jobs are capped far below).
MAX_FRAME = 256 * 1024 * 1024

_COUNT = struct.Struct(">H")


def frame_parts(message: object) -> tuple[list[bytes | memoryview], int]:
    """One message as the pieces of a frame, and its length, for ``os.writev`` (no joined copy):
    4-byte big-endian length of the rest, 2-byte count of out-of-band buffers (page bodies: see
    ``findings.pickled_as_tuple``), 4-byte length of each, the pickle, then the buffers as they are."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = _COUNT.pack(len(raws)) + b"".join(_HEADER.pack(r.nbytes) for r in raws)
    size = len(head) + len(data) + sum(r.nbytes for r in raws)
    return [_HEADER.pack(size) + head, data, *raws], _HEADER.size + size


def frame(message: object) -> bytes:
    """One message as one frame (see ``frame_parts``)."""
    return b"".join(frame_parts(message)[0])


def _unframe(payload: memoryview) -> object:
    (count,) = _COUNT.unpack_from(payload, 0)
    pos = _COUNT.size + count * _HEADER.size
    if pos > len(payload):
        raise ValueError("scan worker stream corrupt (buffer table)")
    sizes = [_HEADER.unpack_from(payload, _COUNT.size + i * _HEADER.size)[0] for i in range(count)]
    end = len(payload) - sum(sizes)
    if end < pos:
        raise ValueError("scan worker stream corrupt (buffer sizes)")
    buffers, at = [], end
    for n in sizes:
        buffers.append(bytes(payload[at : at + n]))
        at += n
    return pickle.loads(payload[pos:end], buffers=buffers)  # noqa: S301 - our own workers, private pipes


class FrameReader:
    """Splits a byte stream into messages. ``feed`` returns the messages completed by ``data``."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[object]:
        self._buf += data
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > MAX_FRAME or size < _COUNT.size:
                raise ValueError(f"scan worker stream corrupt (frame of {size} bytes)")
            if len(buf) - pos - _HEADER.size < size:
                break
            start = pos + _HEADER.size
            pos = start + size
            with memoryview(buf) as view:
                message = _unframe(view[start:pos])
            yield message
        del buf[:pos]


#: Most pieces one ``writev`` takes (IOV_MAX on Linux).
_IOV_MAX = 1024


def writev(fd: int, parts: list[bytes | memoryview]) -> int:
    """``os.writev`` of any number of pieces: what was written (less than all when the pipe is full)."""
    sent = 0
    for i in range(0, len(parts), _IOV_MAX):
        chunk = parts[i : i + _IOV_MAX]
        try:
            n = os.writev(fd, chunk)
        except BlockingIOError:
            if sent:
                return sent
            raise
        sent += n
        if n < sum(len(p) if isinstance(p, bytes) else p.nbytes for p in chunk):
            break
    return sent
