"""docs/install.md, run for real in a fresh Debian 13 (trixie) root made from Debian's packages.

Once per session: ``debootstrap --variant=minbase trixie`` from the Debian mirror of this machine's own apt
sources, then what every real Debian 13 install has and minbase lacks (systemd, procps, iproute2: all
Priority "important"), then the guide's own shell blocks, steps 1 to 6 of "## Install", each run with
bash -e inside the chroot, line by line as written. Only what cannot happen in a chroot is stood in for,
by shell functions defined before the guide's lines (see PRELUDE), never by editing them:

- ``git clone <your copy ...> /opt/netmon``: the guide's alternative, "unpack a release into /opt/netmon",
  is done instead: the checkout's files (git-tracked and untracked-not-ignored, i.e. this working tree)
  are copied there before step 2. ``pip install /opt/netmon`` then builds netmon's wheel from them
  inside the chroot with Debian's Python 3.13 and installs it with its dependencies.
- ``systemctl``: no systemd runs in a chroot. ``enable`` is real (systemctl works offline); ``--now`` of
  a root ``Type=oneshot`` unit (the firewall) runs its ExecStart lines; other units are not started
  (the proxy's configuration is checked below with ``netmon run --check`` run the way its unit runs
  it); ``daemon-reload`` does nothing; ``restart dnsmasq`` runs ``dnsmasq --test``.
- ``sysctl --system`` applies only /etc/sysctl.d/99-netmon.conf (all net.* keys): every step after pip
  runs in its own empty network namespace (``unshare --net``), so the firewall and the net.* settings
  land there and never on this machine.

pip inside the chroot uses this machine's pip configuration, read at run time (its pip.conf files, the
constraints file and CA bundle they or PIP_* name), and its pip cache (bind-mounted).

Then: ``netmon --version``; ``netmon run --check`` as the proxy's unit runs it (user, environment file,
working directory); ``systemd-analyze verify`` of every unit in deploy/systemd, inside the chroot
(Debian 13's systemd, so ExecStart paths, users and timers are checked against the installed tree);
``nft -c`` of every shipped ruleset with the chroot's nft, in an empty network namespace.

Needs root, debootstrap (installed with apt-get when missing) and a Debian mirror in the apt sources.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import debian_root
from tests.gateway.debian_root import DebianRoot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "install.md"
UNITS = sorted(p.name for p in (REPO / "deploy" / "systemd").iterdir() if p.suffix in (".service", ".timer"))
RULESETS = sorted(
    p.relative_to(REPO) for p in (REPO / "deploy").rglob("*.nft") if not p.name.endswith("-vars.nft")
)
# What every Debian 13 install has (Priority: important) and debootstrap's minbase leaves out.
REAL_BOX = ["systemd", "procps", "iproute2"]
# The guide's last step, `netmon doctor`, needs the services running: only its offline checks are asserted.
OFFLINE_CHECK_STEP = "7."
OFFLINE_CHECKS = ("database", "library", "policy", "interception-ca")

PRELUDE = r"""
systemctl() {
    case "$1" in
        daemon-reload) echo "[test] systemctl daemon-reload: no systemd runs in a chroot" ;;
        enable)
            shift
            local now=0 units=()
            for a in "$@"; do if [ "$a" = --now ]; then now=1; else units+=("$a"); fi; done
            /usr/bin/systemctl enable "${units[@]}"
            [ "$now" = 1 ] || return 0
            for u in "${units[@]}"; do
                case "$u" in *.*) ;; *) u="$u.service" ;; esac
                local f=/etc/systemd/system/$u
                if grep -qx 'Type=oneshot' "$f" && ! grep -q '^User=' "$f"; then
                    echo "[test] start $u: its ExecStart lines"
                    grep '^ExecStart=' "$f" | cut -d= -f2- | sed 's/^[-@+!]*//' | while read -r line; do
                        eval "$line" || return 1
                    done
                else
                    echo "[test] start $u: not started in a chroot"
                fi
            done ;;
        restart|start|reload)
            if [ "$2" = dnsmasq ]; then dnsmasq --test
            else echo "[test] systemctl $*: not in a chroot"; fi ;;
        *) /usr/bin/systemctl "$@" ;;
    esac
}
sysctl() {
    if [ "$1" = --system ]; then
        echo "[test] sysctl --system: /etc/sysctl.d/99-netmon.conf only, in this network namespace"
        command sysctl -p /etc/sysctl.d/99-netmon.conf
    else
        command sysctl "$@"
    fi
}
"""


def guide_steps(text: str) -> list[tuple[str, list[str]]]:
    """The numbered steps of the guide's "## Install" section: (title, the lines of their sh blocks)."""
    section = text.split("\n## Install\n", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    steps: list[tuple[str, list[str]]] = []
    for chunk in re.split(r"\n(?=\d+\. \*\*)", section):
        title = re.match(r"(\d+\. \*\*[^*]+\*\*)", chunk)
        if not title:
            continue
        lines = [
            line.strip()
            for block in re.findall(r"```sh\n(.*?)```", chunk, re.S)
            for line in block.splitlines()
            if line.strip()
        ]
        steps.append((title.group(1), lines))
    return steps


def stand_in(line: str) -> str:
    """The guide's line as run in the chroot (unchanged, except what a chroot cannot do)."""
    if line.startswith("git clone "):
        return ": '[test] git clone: the checkout was unpacked into /opt/netmon (the guide: or a release)'"
    return line


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount)"
    for tool in ("chroot", "unshare", "mount", "git"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not debian_root.apt_mirror():
        return "no Debian mirror in this machine's apt sources (/etc/apt/sources.list, sources.list.d)"
    if not debian_root.ensure_debootstrap():
        return "debootstrap is missing and apt-get could not install it"
    return None


def _checkout_files() -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [f for f in out.stdout.split("\0") if f and (REPO / f).is_file()]


class Installed:
    def __init__(self, root: DebianRoot) -> None:
        self.root = root
        self.log: list[str] = []
        self.timings: dict[str, float] = {}

    def sh(self, script: str, *, net: bool = False, what: str = "") -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        result = self.root.run(script, net=net, env=self.pip_env)
        self.timings[what or script[:40]] = time.monotonic() - t0
        self.log.append(f"### {what or script}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
        return result

    def must(self, script: str, *, net: bool = False, what: str = "") -> str:
        result = self.sh(script, net=net, what=what)
        if result.returncode != 0:
            pytest.fail(
                f"{what or script} failed in the Debian 13 root (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}",
                pytrace=False,
            )
        return result.stdout

    def copy_pip_config(self) -> None:
        for f in self.pip_files:
            self.root.copy_in(f)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    mirror = debian_root.apt_mirror()
    assert mirror
    root = DebianRoot(tmp_path_factory.mktemp("debian13") / "root")
    inst = Installed(root)
    inst.pip_files, local_dirs, inst.pip_env = debian_root.host_pip_files()
    root.binds = [(d, d, False) for d in local_dirs]
    cache = debian_root.host_pip_cache()
    if cache:
        root.binds.append((cache, Path("/root/.cache/pip"), True))
    try:
        t0 = time.monotonic()
        built = root.build(mirror)
        inst.timings["debootstrap"] = time.monotonic() - t0
        assert built.returncode == 0, f"debootstrap failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
        inst.must(
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends " + " ".join(REAL_BOX),
            net=True,
            what="a real Debian 13 box: " + " ".join(REAL_BOX),
        )
        for name in _checkout_files():  # "or unpack a release into /opt/netmon"
            dest = root.inside(Path("/opt/netmon") / name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest)
        for title, lines in guide_steps(GUIDE.read_text()):
            if title.startswith(OFFLINE_CHECK_STEP):
                continue  # netmon doctor: see test_netmon_doctor_offline_checks
            needs_net = any(re.search(r"apt-get|pip install|git clone", line) for line in lines)
            script = "\n".join(
                [
                    PRELUDE,
                    'cd "$(cat /root/.guide-cwd 2>/dev/null || echo /root)"',
                    "set -euxo pipefail",
                    *(stand_in(line) for line in lines),
                    "pwd > /root/.guide-cwd",
                ]
            )
            inst.copy_pip_config()  # again after apt-get: ca-certificates rewrites the bundle
            inst.must(script, net=needs_net, what=f"docs/install.md step {title}")
        yield inst
    finally:
        timings = ", ".join(f"{k[:40]}: {v:.0f}s" for k, v in inst.timings.items())
        print(f"\nDebian 13 root timings: {timings}")
        if not root.remove():
            print(f"still mounted under {root.path}, kept: {debian_root.mounts_under(root.path)}")


def test_the_guide_lists_the_steps_the_test_runs() -> None:
    steps = guide_steps(GUIDE.read_text())
    joined = "\n".join(line for _, lines in steps for line in lines)
    assert len(steps) >= 6
    for needed in (
        "apt-get install",
        "python3 -m venv /opt/netmon/.venv",
        "pip install /opt/netmon",
        "adduser --system",
        "install -m 644 deploy/systemd/",
        "netmon db upgrade",
        "deploy/dnsmasq/netmon.conf",
    ):
        assert needed in joined, f"docs/install.md no longer has {needed!r} in a sh block"
    assert "sudo " not in joined, "sudo is not on a minimal Debian 13 install: use runuser -u netmon --"


def test_netmon_doctor_offline_checks(gateway: Installed) -> None:
    """Step 7 as written; nothing runs in a chroot, so only the checks that need no service must pass."""
    steps = [lines for title, lines in guide_steps(GUIDE.read_text()) if title.startswith(OFFLINE_CHECK_STEP)]
    assert steps and any("netmon doctor" in line for line in steps[0])
    result = gateway.sh("\n".join(steps[0]), what="docs/install.md step 7 (netmon doctor)")
    for check in OFFLINE_CHECKS:
        assert re.search(rf"^\s*ok\s+{re.escape(check)}\s", result.stdout, re.M), result.stdout


def test_the_venv_uses_debians_python_313(gateway: Installed) -> None:
    out = gateway.must(
        "/opt/netmon/.venv/bin/python -c 'import sys; print(sys.version_info[:2], sys._base_executable)'"
    )
    assert "(3, 13)" in out and "/usr/bin/python3" in out


def test_netmon_version(gateway: Installed) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    out = gateway.must("/opt/netmon/.venv/bin/netmon --version")
    assert version in out


def _unit_command(gateway: Installed, unit: str, extra: str) -> str:
    """Shell that runs a unit's ExecStart the way systemd would: its user, environment, directory."""
    text = gateway.root.inside(f"/etc/systemd/system/{unit}").read_text()
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            fields.setdefault(key.strip(), []).append(value.strip())
    env_files = " ".join(f.lstrip("-") for f in fields.get("EnvironmentFile", []))
    env = " ".join(fields.get("Environment", []))
    inner = (
        f'for f in {env_files}; do while IFS= read -r l; do case "$l" in ""|\\#*) ;; *) export "$l";; '
        f"esac; done < $f; done; export {env}; cd {fields['WorkingDirectory'][0]}; "
        f"exec {fields['ExecStart'][0]} {extra}"
    )
    return f"runuser -u {fields['User'][0]} -- bash -c {_quote(inner)}"


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def test_netmon_run_check_passes_as_the_proxy_unit_runs_it(gateway: Installed) -> None:
    out = gateway.must(
        _unit_command(gateway, "netmon-proxy.service", "--check"),
        what="netmon run --check (as netmon-proxy.service)",
    )
    assert out is not None


def test_the_database_was_created_by_the_service_user(gateway: Installed) -> None:
    out = gateway.must(
        "find /var/lib/netmon -maxdepth 2 -newer /opt/netmon/.venv/bin/python -printf '%u %p\\n'"
    )
    assert out.strip() and all(line.startswith("netmon ") for line in out.splitlines()), out


# Units with an [Install] section that a school sets up only when it uses them (their own docs say how).
OPTIONAL_UNITS = {"netmon-console.service", "netmon-wireguard.service"}


def test_the_guide_enables_every_unit_a_gateway_needs(gateway: Installed) -> None:
    wanted = [u for u in UNITS if "[Install]" in (REPO / "deploy" / "systemd" / u).read_text()]
    wanted = [u for u in wanted if u not in OPTIONAL_UNITS]
    result = gateway.sh("for u in " + " ".join(wanted) + '; do echo "$u $(systemctl is-enabled $u)"; done')
    not_enabled = [line for line in result.stdout.splitlines() if not line.endswith(" enabled")]
    assert not not_enabled, f"docs/install.md leaves these units off: {not_enabled}"


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify(gateway: Installed, unit: str) -> None:
    installed = gateway.root.inside(f"/etc/systemd/system/{unit}")
    assert installed.is_file(), f"docs/install.md does not install {unit} into /etc/systemd/system"
    result = gateway.sh(f"systemd-analyze verify /etc/systemd/system/{unit}", what=f"verify {unit}")
    problems = [line for line in result.stderr.splitlines() if unit.split(".")[0] in line or "netmon" in line]
    assert result.returncode == 0 and not problems, result.stderr


@pytest.mark.parametrize("ruleset", RULESETS, ids=str)
def test_nft_check_of_the_shipped_ruleset(gateway: Installed, ruleset: Path) -> None:
    inside = Path("/opt/netmon") / ruleset
    gateway.must(f"nft -c -I {inside.parent} -f {inside}", what=f"nft -c {ruleset}")


def test_nft_check_of_the_installed_ruleset(gateway: Installed) -> None:
    gateway.must("nft -c -I /etc/netmon -f /etc/netmon/netmon.nft", what="nft -c /etc/netmon/netmon.nft")
    listed = gateway.log[[i for i, s in enumerate(gateway.log) if "step 4." in s][0]]
    assert "table inet netmon" in listed, "step 4's `nft list table inet netmon` listed nothing"
