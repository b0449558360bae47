"""``netmon devices``: enrol (config, terminal QR, PNG), list, rotate, revoke, profile, gateway-config."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from netmon.cli import main


def _run(store_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["devices", "--db", store_url, *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _config(stdout: str) -> str:
    start = stdout.index("[Interface]")
    end = stdout.index("PersistentKeepalive")
    return stdout[start : stdout.index("\n", end) + 1]


def test_enrol_needs_the_aup_confirmation(store_url: str, engine: Engine, wg_env: dict[str, str]) -> None:
    code, _, err = _run(store_url, "enrol", "lt-001", "--user", "alice", "--aup-version", "v3")
    assert code == 1 and "accepted the AUP (version v3)" in err and "--aup-accepted" in err


def test_enrol_prints_config_and_qr_and_writes_png(
    store_url: str, engine: Engine, wg_env: dict[str, str], tmp_path: Path
) -> None:
    png, conf = tmp_path / "lt-001.png", tmp_path / "lt-001.conf"
    code, out, err = _run(
        store_url, "enrol", "lt-001", "--user", "Alice", "--site", "north", "--aup-version", "v3",
        "--aup-accepted", "-o", str(png), "--conf", str(conf),
    )  # fmt: skip
    assert code == 0, err
    config = _config(out)
    assert "Address = 10.99.0.2/32, fd99::2/128" in config
    assert "shown once and is not stored" in out
    assert "▀" in out or "█" in out  # the terminal QR code
    assert "no WireGuard interface here" in err
    assert conf.read_text() == config and conf.stat().st_mode & 0o777 == 0o600
    assert png.read_bytes().startswith(b"\x89PNG")
    if shutil.which("zbarimg"):  # the PNG decodes to exactly the configuration the apps import
        decoded = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True)
        assert decoded.stdout.rstrip("\n") == config.rstrip("\n")
    code, out, _ = _run(store_url, "list")
    assert code == 0
    assert "lt-001" in out and "alice" in out and "north" in out and "10.99.0.2" in out and "never" in out


def test_rotate_revoke_list_and_gateway_config(
    store_url: str, engine: Engine, wg_env: dict[str, str]
) -> None:
    _, first, _ = _run(store_url, "enrol", "lt-001", "--user", "alice", "--aup-accepted", "--no-qr")
    _run(store_url, "enrol", "lt-002", "--user", "bob", "--aup-accepted", "--no-qr")
    code, rotated, _ = _run(store_url, "rotate", "lt-001", "--no-qr")
    assert code == 0 and "10.99.0.2/32" in rotated and _config(rotated) != _config(first)
    code, out, _ = _run(store_url, "revoke", "lt-002", "--reason", "lost")
    assert code == 0 and "revoked lt-002" in out
    code, out, _ = _run(store_url, "list")
    assert "lt-001" in out and "lt-002" not in out
    code, out, _ = _run(store_url, "list", "--all")
    assert "revoked" in out and "lt-002" in out
    code, gateway, _ = _run(store_url, "gateway-config")
    assert code == 0 and gateway.count("[Peer]") == 1 and "# lt-001" in gateway
    code, _, err = _run(store_url, "revoke", "lt-002")
    assert code == 1 and "no enrolled device 'lt-002'" in err
    code, _, err = _run(store_url, "gateway-config", "--apply")
    assert code == 1 and "need -o FILE" in err


def test_missing_endpoint_is_one_clear_line(
    store_url: str, engine: Engine, wg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NETMON_WG_ENDPOINT")
    code, _, err = _run(store_url, "enrol", "lt-001", "--user", "alice", "--aup-accepted")
    assert code == 1 and "NETMON_WG_ENDPOINT: not set" in err


@pytest.mark.parametrize(
    ("flag", "bundle"), [([], "com.wireguard.ios"), (["--macos"], "com.wireguard.macos")]
)
def test_apple_profile_is_on_demand_always(
    store_url: str, engine: Engine, wg_env: dict[str, str], tmp_path: Path, flag: list[str], bundle: str
) -> None:
    _, enrolled, _ = _run(store_url, "enrol", "ipad-1", "--user", "alice", "--aup-accepted", "--no-qr")
    out_file = tmp_path / "ipad-1.mobileconfig"
    code, out, err = _run(
        store_url, "profile", "ipad-1", "--apple", *flag, "-o", str(out_file), "--trusted-ssid", "SchoolWiFi"
    )
    assert code == 0, err
    assert "new keys" in out
    assert out_file.stat().st_mode & 0o777 == 0o600
    profile = plistlib.loads(out_file.read_bytes())
    assert profile["PayloadType"] == "Configuration" and profile["PayloadRemovalDisallowed"] is True
    (vpn,) = profile["PayloadContent"]
    assert vpn["PayloadType"] == "com.apple.vpn.managed" and vpn["VPNType"] == "VPN"
    assert vpn["VPNSubType"] == bundle
    wg_quick = vpn["VendorConfig"]["WgQuickConfig"]
    assert "Address = 10.99.0.2/32, fd99::2/128" in wg_quick
    assert wg_quick != _config(enrolled)  # new keys: private keys are never kept
    assert vpn["VPN"]["RemoteAddress"] == "vpn.school.example:51820"
    assert vpn["VPN"]["OnDemandEnabled"] == 1 and vpn["VPN"]["OnDemandUserOverrideDisabled"] is True
    assert vpn["VPN"]["OnDemandRules"] == [
        {"Action": "Disconnect", "InterfaceTypeMatch": "WiFi", "SSIDMatch": ["SchoolWiFi"]},
        {"Action": "Connect"},
    ]
    code, _, err = _run(store_url, "profile", "ipad-1", "-o", str(out_file))
    assert code == 1 and "--apple" in err
