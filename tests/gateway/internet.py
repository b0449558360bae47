"""The "internet" of the namespace tests: HTTP on 80, HTTPS on 443 (certificate from a private CA the
test makes), UDP echo and plain TCP services on the ports in UDP_PORTS / TCP_PORTS. Every request is
logged as one JSON line (peer, host, path, sha256 of the body) so the test can check what the server saw.

Run: python -m tests.gateway.internet CERT KEY LOGFILE   (inside the "internet" namespace)
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PHRASE_HTML = (
    b"<!doctype html><html><head><title>diary</title></head><body>"
    b"<p>Some days I think I want to kill myself.</p></body></html>"
)
BENIGN_HTML = b"<!doctype html><html><body><p>Opening times of the library.</p></body></html>"

#: Other services of the "internet" (the firewall tests try each from the pupil device).
UDP_PORTS = (53, 443, 500, 853, 1194, 4433, 4500, 5000, 51820)
TCP_PORTS = (53, 853, 1194, 5000, 8443)

_lock = threading.Lock()


def blob(seed: int, size: int) -> bytes:
    """Deterministic bytes that do not compress (what the server sends for /blob)."""
    return random.Random(seed).randbytes(size)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_path: Path

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _record(self, body: bytes) -> dict[str, object]:
        entry: dict[str, object] = {
            "peer": self.client_address[0].removeprefix("::ffff:"),
            "scheme": "https" if isinstance(self.connection, ssl.SSLSocket) else "http",
            "sni": getattr(self.connection, "netmon_sni", None),
            "host": self.headers.get("Host", ""),
            "method": self.command,
            "path": self.path,
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        with _lock, self.log_path.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
        return entry

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        entry = self._record(b"")
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/phrase.html":
            self._send(200, PHRASE_HTML, "text/html; charset=utf-8")
        elif parts.path == "/benign.html":
            self._send(200, BENIGN_HTML, "text/html; charset=utf-8")
        elif parts.path == "/blob":
            data = blob(int(query.get("seed", ["1"])[0]), int(query.get("size", ["100000"])[0]))
            self._send(200, data, "application/octet-stream")
        elif parts.path == "/echo":
            self._send(200, json.dumps(entry).encode(), "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        entry = self._record(body)
        self._send(200, json.dumps(entry).encode(), "application/json")


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def udp_echo(port: int) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    while True:
        data, peer = sock.recvfrom(2048)
        sock.sendto(b"echo:" + data, peer)


def tcp_echo(port: int) -> None:
    """A plain TCP service (what a VPN endpoint or another server looks like to the firewall)."""
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("::", port))
    server.listen(16)
    while True:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello:%d\n" % port)


def main(cert: str, key: str, log_file: str) -> None:
    Handler.log_path = Path(log_file)
    plain = DualStackServer(("::", 80), Handler)
    secure = DualStackServer(("::", 443), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember_sni(sslsock: ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        sslsock.netmon_sni = name  # type: ignore[attr-defined]

    context.sni_callback = remember_sni
    secure.socket = context.wrap_socket(secure.socket, server_side=True, do_handshake_on_connect=False)
    for target in (plain.serve_forever, secure.serve_forever):
        threading.Thread(target=target, daemon=True).start()
    for port in UDP_PORTS:
        threading.Thread(target=udp_echo, args=(port,), daemon=True).start()
    for port in TCP_PORTS:
        threading.Thread(target=tcp_echo, args=(port,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:4])
