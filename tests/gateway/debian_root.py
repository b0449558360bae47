"""A fresh Debian 13 (trixie) root made from Debian's packages, for running docs/install.md for real.

- ``apt_mirror()`` reads the Debian mirror from this machine's own apt sources (one-line ``.list`` files
  and deb822 ``.sources`` files); no mirror is ever named in the code.
- ``ensure_debootstrap()`` finds debootstrap or installs it with apt-get.
- ``DebianRoot`` builds the root with ``debootstrap --variant=minbase`` and runs commands in it with
  ``chroot``: /proc is mounted for each command in a private mount namespace of that command, so it is
  unmounted when the command ends, always (even killed), and no other process sees it; so are the
  read-only bind mounts of any local package folder the host's pip configuration names (and the
  writable one of the host's pip cache, so that downloads are shared between runs).
  ``net=False`` runs the command in a new, empty network namespace (``unshare --net``), so that ``nft``
  and ``sysctl net.*`` touch only that namespace and never the host's firewall or kernel settings.
- ``host_pip_files()`` is the host's pip configuration as it is at run time (its pip.conf files, the
  constraints/requirements files and CA bundles they or PIP_* name), copied into the root at the same
  paths so that pip inside the chroot reaches the package index the way the host's pip does.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

SUITE = "trixie"
DEBIAN_SUITES = {
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
    "stable",
    "testing",
    "unstable",
    "oldstable",
}
APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_D = Path("/etc/apt/sources.list.d")


def _debian_uri(uri: str, suites: list[str], types: list[str]) -> str | None:
    if "deb" not in types or not any(s in DEBIAN_SUITES for s in suites):
        return None
    if "security" in uri.rstrip("/").rsplit("/", 1)[-1] or not uri.startswith(("http://", "https://")):
        return None
    return uri


def apt_mirror() -> str | None:
    """The first Debian archive (not the security archive) in this machine's apt sources."""
    files = [APT_SOURCES] if APT_SOURCES.is_file() else []
    if APT_SOURCES_D.is_dir():
        files += sorted(APT_SOURCES_D.iterdir())
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    found = _debian_uri(
                        uri, fields.get("suites", "").split(), fields.get("types", "").split()
                    )
                    if found:
                        return found
        elif path.suffix == ".list" or path == APT_SOURCES:
            for line in text.splitlines():
                line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()  # type: ignore[assignment]
                if len(line) >= 3:
                    found = _debian_uri(line[1], [line[2]], [line[0]])
                    if found:
                        return found
    return None


def ensure_debootstrap() -> str | None:
    """The path of debootstrap, installing Debian's package if needed; None when it cannot be had."""
    found = shutil.which("debootstrap")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return shutil.which("debootstrap")


def _pip_config_files() -> list[Path]:
    """The pip configuration files pip itself would read on this host, in pip's order."""
    found: list[Path] = []
    xdg = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    home = Path.home()
    candidates = [
        Path("/etc/pip.conf"),
        *(Path(d) / "pip" / "pip.conf" for d in xdg),
        home / ".pip" / "pip.conf",
        home / ".config" / "pip" / "pip.conf",
    ]
    if os.environ.get("PIP_CONFIG_FILE") and os.environ["PIP_CONFIG_FILE"] != os.devnull:
        candidates.append(Path(os.environ["PIP_CONFIG_FILE"]))
    for path in candidates:
        if path.is_file() and path not in found:
            found.append(path)
    return found


FILE_KEYS = {"cert", "client-cert", "constraint", "constraints", "requirement", "requirements"}
LOCATION_KEYS = {"find-links", "index-url", "extra-index-url"}


def _local_dir(value: str) -> Path | None:
    if value.startswith("file://"):
        value = urlparse(value).path
    if value.startswith("/"):
        path = Path(value)
        # a file:// simple index: bind its parent, which also holds the files it links to
        if path.name == "simple" and path.parent != Path("/"):
            path = path.parent
        return path if path.is_dir() else None
    return None


def host_pip_files() -> tuple[list[Path], list[Path], dict[str, str]]:
    """(files to copy at the same path, local folders to bind read-only, PIP_* environment to pass)."""
    files = _pip_config_files()
    dirs: list[Path] = []
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    values: list[tuple[str, str]] = [(k[4:].lower().replace("_", "-"), v) for k, v in env.items()]
    for conf in list(files):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(conf)
        except configparser.Error:
            continue
        for section in parser.sections():
            values += [(k.lower().replace("_", "-"), v) for k, v in parser.items(section)]
    for key, value in values:
        for item in value.split():
            if key in FILE_KEYS and item.startswith("/") and Path(item).is_file():
                files.append(Path(item))
            elif key in LOCATION_KEYS:
                local = _local_dir(item)
                if local and local not in dirs:
                    dirs.append(local)
    return list(dict.fromkeys(files)), dirs, env


def host_pip_cache() -> Path | None:
    out = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True)
    path = Path(out.stdout.strip() or Path.home() / ".cache" / "pip")
    return path if out.returncode == 0 and path.is_dir() else None


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [p for p in points if p.startswith(prefix)]


class DebianRoot:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.binds: list[tuple[Path, Path, bool]] = []  # (host folder, folder inside the root, writable)

    def build(self, mirror: str, debootstrap: str = "debootstrap") -> subprocess.CompletedProcess[str]:
        cmd = [debootstrap, "--variant=minbase", SUITE, str(self.path), mirror]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    def inside(self, path: str | Path) -> Path:
        return self.path / str(path).lstrip("/")

    def copy_in(self, host_file: Path, at: str | Path | None = None) -> None:
        dest = self.inside(at or host_file)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink():
            dest.unlink()
        shutil.copyfile(host_file, dest)

    def _mount_script(self) -> str:
        """Shell that mounts /proc and the binds in the root; run in a private mount namespace."""
        lines = [f"mount -t proc proc {shlex.quote(str(self.inside('/proc')))}"]
        for host, inner, writable in self.binds:
            target = shlex.quote(str(self.inside(inner)))
            lines.append(f"mkdir -p {target} && mount --bind {shlex.quote(str(host))} {target}")
            if not writable:
                lines.append(f"mount -o remount,bind,ro {target}")
        return " && ".join(lines)

    def run(
        self, script: str, *, net: bool = True, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run a bash script inside the root as root, with a clean environment plus ``env``.

        /proc and the binds are mounted in a private mount namespace of this one command
        (``unshare --mount --propagation private``): no other process sees them, and they are gone
        when the command ends, however it ends (even killed), so nothing is ever left mounted.
        """
        base = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
            **(env or {}),
        }
        inner = [
            "chroot",
            str(self.path),
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in base.items()),
            "/bin/bash",
            "-c",
            script,
        ]
        wrapper = f"{self._mount_script()} && exec {shlex.join(inner)}"
        cmd = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            *([] if net else ["--net"]),
            "--",
            "/bin/sh",
            "-c",
            wrapper,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def remove(self) -> bool:
        """Delete the root, unless something is mounted under it (never here: then keep it, say so)."""
        if mounts_under(self.path):
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True
