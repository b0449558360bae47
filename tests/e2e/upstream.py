"""Real HTTP, HTTPS and WebSocket servers on loopback that play 'the internet' in end-to-end tests.

Pages are served byte-exact from ``PAGES`` so a test can compare what the client received with what the
server sent. A test certificate authority signs the HTTPS server's certificate for every test host.
"""

from __future__ import annotations

import gzip
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli

from tests.gateway.certs import make_site_ca

TEST_HOSTS = ["pages.test", "www.google.com", "www.bing.com", "chat.test", "forum.test", "localhost"]

BENIGN_HTML = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Year 8 science: the water cycle</title>"
    "<style>.x{color:red}</style><script>var kill='myself';</script></head><body>"
    + "<p>Water evaporates from the sea, condenses into clouds and falls as rain. "
    "Pupils measure rainfall in the school garden and plot it on a chart.</p>" * 40 + "</body></html>"
).encode()

PHRASE_HTML = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>my diary</title></head><body>"
    b"<p>Nobody listens at home. Honestly I want to kill myself tonight.</p>"
    b"<script>/* kms in a script must not count */</script></body></html>"
)

# A Windows-1252 page: curly quotes (0x93/0x94) around the phrase, declared in the header only.
CP1252_HTML = (
    "<html><body><p>She wrote: \u201ci want to kill myself\u201d \u2013 then logged off.</p></body></html>"
).encode("cp1252")


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    encoding: str | None = None  # Content-Encoding applied to body


def _pages() -> dict[str, Page]:
    return {
        "/benign.html": Page(BENIGN_HTML),
        "/phrase.html": Page(PHRASE_HTML),
        "/gzip.html": Page(gzip.compress(PHRASE_HTML.replace(b"my diary", b"gzip diary")), encoding="gzip"),
        "/brotli.html": Page(brotli.compress(PHRASE_HTML.replace(b"my diary", b"br diary")), encoding="br"),
        "/cp1252.html": Page(CP1252_HTML, content_type="text/html; charset=windows-1252"),
        "/search": Page(b"<html><body><p>Results</p></body></html>"),
        "/image.png": Page(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png"),
    }


class TestCA:
    """A throwaway certificate authority and a server certificate for every test host."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path, self.server_cert_path, self.server_key_path = make_site_ca(
            directory, TEST_HOSTS, ["127.0.0.1"]
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        return context


@dataclass
class Upstream:
    http_port: int
    https_port: int
    ws_port: int
    ca: TestCA
    pages: dict[str, Page]
    received: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body)
    _servers: list[object] = field(default_factory=list)

    def routes(self) -> dict[str, int]:
        routes: dict[str, int] = {}
        for host in TEST_HOSTS:
            routes[f"{host}:80"] = self.http_port
            routes[f"{host}:443"] = self.https_port
        routes["chat.test:80"] = self.ws_port
        return routes

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()  # type: ignore[attr-defined]
            if hasattr(server, "server_close"):
                server.server_close()


def _handler(upstream_ref: list[Upstream]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, page: Page) -> None:
            self.send_response(200)
            self.send_header("Content-Type", page.content_type)
            if page.encoding:
                self.send_header("Content-Encoding", page.encoding)
            self.send_header("Content-Length", str(len(page.body)))
            self.end_headers()
            self.wfile.write(page.body)

        def do_GET(self) -> None:  # noqa: N802
            upstream = upstream_ref[0]
            path = self.path.split("?", 1)[0]
            upstream.received.append(("GET", self.path, b""))
            page = upstream.pages.get(path)
            if page is None:
                self.send_error(404)
                return
            self._send(page)

        def do_POST(self) -> None:  # noqa: N802
            upstream = upstream_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            upstream.received.append(("POST", self.path, body))
            self._send(Page(b"<html><body><p>Thanks, your message was posted.</p></body></html>"))

    return Handler


def start_upstream(directory: Path) -> Upstream:
    ca = TestCA(directory)
    ref: list[Upstream] = []
    handler = _handler(ref)
    http_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    https_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    https_server.socket = ca.server_context().wrap_socket(https_server.socket, server_side=True)
    ws_server = _start_ws()
    upstream = Upstream(
        http_server.server_address[1],
        https_server.server_address[1],
        ws_server.socket.getsockname()[1],
        ca,
        _pages(),
    )
    ref.append(upstream)
    for server in (http_server, https_server, ws_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()
        upstream._servers.append(server)
    return upstream


def _start_ws():  # type: ignore[no-untyped-def]
    """A WebSocket chat server that answers every message with a friendly reply."""
    from websockets.sync.server import serve

    def chat(websocket) -> None:  # type: ignore[no-untyped-def]
        for message in websocket:
            websocket.send(f"bot: I hear you ({len(message)} chars). Talk to a trusted adult.")

    return serve(chat, "127.0.0.1", 0)
