"""Headless Chromium driven over the DevTools protocol (CDP) with the ``websockets`` client."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def executable() -> str | None:
    explicit = os.environ.get("NETMON_TEST_CHROMIUM")
    if explicit:
        return explicit
    for path in CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("chromium")


class Browser:
    """One headless Chromium with one page; every request goes through ``proxy`` (loopback included)."""

    events: list[dict[str, Any]] | None = None  # DevTools events, kept only when a list

    def __init__(self, profile: Path, proxy: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        exe = executable()
        if exe is None:
            raise RuntimeError("chromium not found (apt-get install chromium)")
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-default-browser-check",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            *extra_args,
        ]
        if proxy:
            args += [f"--proxy-server=http://{proxy}", "--proxy-bypass-list=<-loopback>"]
        args.append("about:blank")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = []
        while not pages and time.monotonic() < deadline:
            pages = [
                t
                for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                if t.get("type") == "page"
            ]
            time.sleep(0.1)
        self.ws: ClientConnection = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            if "method" in reply and self.events is not None:
                self.events.append(reply)  # DevTools events, for a subclass that records them

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> dict[str, Any]:
        return self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll a JS expression until it is truthy (navigations in between are fine)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except RuntimeError:
                last = None
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression!r} (last {last!r}, at {self.url()!r})")

    def url(self) -> str:
        try:
            return str(self.evaluate("location.href"))
        except RuntimeError:
            return "?"

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
