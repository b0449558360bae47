"""The wheel a school installs: built from this checkout, installed into a fresh virtual environment, and
run from a directory that is not the checkout — the library, policy and config come from the wheel.

Slow (a fresh environment installs every dependency, from pip's cache where it can), so one module-scoped
install serves every test here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


class Installed:
    def __init__(self, venv: Path, wheel: Path, home: Path) -> None:
        self.venv, self.wheel, self.home = venv, wheel, home
        self.netmon = venv / "bin" / "netmon"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NETMON_", "PYTHONPATH", "VIRTUAL_ENV"))}
        env["NETMON_STATE_DIR"] = str(self.home / "var")
        return subprocess.run(
            [str(self.netmon), *args], cwd=self.home, env=env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        check=True,
        cwd=root,
        capture_output=True,
    )
    (wheel,) = dist.glob("netmon-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=root, capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    home = root / "elsewhere"
    home.mkdir()
    yield Installed(venv, wheel, home)


def test_wheel_installs_only_netmon_names(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        tops = {name.split("/")[0] for name in whl.namelist() if not name.split("/")[0].endswith(".dist-info")}
        names = set(whl.namelist())
    assert tops and all(top.startswith("netmon") for top in tops), f"generic top-level names in the wheel: {tops}"
    for shipped in ("library/categories.txt", "policy/school.yaml", "policy/filtering.yaml", "mitm_config.yaml"):
        assert f"netmon/_shipped/{shipped}" in names, f"the wheel does not ship {shipped}"


def test_check_passes_outside_the_checkout(installed: Installed) -> None:
    result = installed.run("run", "--check")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert str(REPO) not in result.stdout + result.stderr, "the installed netmon read files from the checkout"


def test_library_check_uses_the_shipped_library(installed: Installed) -> None:
    result = installed.run("library", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "site-packages" in result.stdout + result.stderr or "phrases" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on {port} within {seconds}s")


def test_run_records_a_search_and_portal_serves(installed: Installed) -> None:
    """`netmon run` from the wheel scans a search (offline: the engine is never reached) and stores it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETMON_", "PYTHONPATH"))}
    env["NETMON_STATE_DIR"] = str(installed.home / "var")
    log = installed.home / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(installed.netmon), "run", "--port", str(port), "--set", "connection_strategy=lazy"],
            cwd=installed.home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, proc)
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", timeout=30) as client:
            client.get("http://www.bing.com/search", params={"q": "how to kill myself"})
        deadline = time.monotonic() + 30
        listing = ""
        while time.monotonic() < deadline:
            listing = installed.run("incidents").stdout
            if "suicide" in listing.lower():
                break
            time.sleep(0.5)
        assert "suicide" in listing.lower(), f"no incident listed:\n{listing}\n{log.read_text(errors='replace')[-2000:]}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    port = _free_port()
    with log.open("ab") as out:
        portal = subprocess.Popen(
            [str(installed.netmon), "portal", "--host", "127.0.0.1", "--port", str(port)],
            cwd=installed.home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, portal)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "<form" in page.text, page.text[:500]
    finally:
        portal.terminate()
        portal.wait(timeout=30)
