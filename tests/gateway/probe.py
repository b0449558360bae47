"""Run inside the device namespace: try connections and DNS queries, print one JSON verdict per target.

    python -m tests.gateway.probe tcp:HOST:PORT udp:HOST:PORT dns:SERVER:NAME ...

Verdicts: "answered" (with the first bytes), "refused" (TCP reset / ICMP unreachable), "timeout".
A DNS verdict is the response code ("NOERROR", "NXDOMAIN", ...) with the addresses answered.
"""

from __future__ import annotations

import errno
import json
import secrets
import socket
import struct
import sys
import time

UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES)
RCODES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp(host: str, port: int, timeout: float = 3.0) -> dict[str, object]:
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(1.0)
            try:
                first = sock.recv(64)
            except (TimeoutError, ConnectionResetError):
                first = b""
            return {"verdict": "answered", "data": first.decode(errors="replace"), "s": _since(start)}
    except ConnectionRefusedError:
        return {"verdict": "refused", "s": _since(start)}
    except OSError as exc:
        if exc.errno in UNREACHABLE:
            return {"verdict": "refused", "why": "prohibited", "s": _since(start)}
        return {"verdict": "timeout" if isinstance(exc, TimeoutError) else f"error {exc}", "s": _since(start)}


def udp(host: str, port: int, payload: bytes = b"netmon-probe", timeout: float = 3.0) -> dict[str, object]:
    start = time.perf_counter()
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(payload)
        try:
            data = sock.recv(2048)
            return {"verdict": "answered", "data": data[:64].decode(errors="replace"), "s": _since(start)}
        except ConnectionRefusedError:  # ICMP port unreachable
            return {"verdict": "refused", "s": _since(start)}
        except TimeoutError:
            return {"verdict": "timeout", "s": _since(start)}
        except OSError as exc:
            if exc.errno in UNREACHABLE:  # ICMP administratively prohibited
                return {"verdict": "refused", "why": "prohibited", "s": _since(start)}
            raise


def dns(server: str, name: str, qtype: int = 1) -> dict[str, object]:
    """One DNS query over UDP (type A by default, 28 for AAAA)."""
    ident = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", qtype, 1)
    with socket.socket(_family(server), socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.connect((server, 53))
        sock.send(packet)
        try:
            data = sock.recv(4096)
        except ConnectionRefusedError:
            return {"verdict": "refused"}
        except TimeoutError:
            return {"verdict": "timeout"}
    flags, _qd, answers = struct.unpack(">HHH", data[2:8])
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(answers):
        if data[offset] & 0xC0 == 0xC0:
            offset += 2
        else:
            while data[offset]:
                offset += data[offset] + 1
            offset += 1
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        rdata = data[offset : offset + length]
        offset += length
        if rtype in (1, 28):
            addresses.append(socket.inet_ntop(socket.AF_INET if rtype == 1 else socket.AF_INET6, rdata))
    return {"verdict": RCODES.get(flags & 0xF, str(flags & 0xF)), "addresses": addresses}


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 4)


def main(targets: list[str]) -> None:
    out = {}
    for target in targets:
        kind, rest = target.split(":", 1)
        host, _, last = rest.rpartition(":")
        if kind == "tcp":
            out[target] = tcp(host, int(last))
        elif kind == "udp":
            out[target] = udp(host, int(last))
        else:
            out[target] = dns(host, last, 28 if kind == "dns6" else 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
