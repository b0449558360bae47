"""The no-decrypt list and the memory of failed handshakes (netmon.identity.passthrough), plain core."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.errors import ConfigError
from netmon.identity.passthrough import NoDecryptList, PassthroughMemory


@pytest.mark.parametrize(
    ("host", "entry"),
    [
        ("nhs.uk", "nhs.uk"),
        ("www.NHS.uk.", "nhs.uk"),
        ("a.b.gov.uk", "gov.uk"),
        ("evilnhs.uk", None),
        ("nhs.uk.evil.example", None),
        ("", None),
        (None, None),
    ],
)
def test_match_covers_domain_and_subdomains(host: str | None, entry: str | None) -> None:
    lst = NoDecryptList.build(extra=["nhs.uk", "*.gov.uk"])
    assert lst.match(host) == entry


def test_shipped_default_list_loads_and_covers_banking_health_government() -> None:
    lst = NoDecryptList.build([DEFAULT_POLICY_DIR / "no-decrypt.txt"])
    for host in ("www.barclays.co.uk", "111.nhs.uk", "www.gov.uk"):
        assert lst.match(host), host
    assert lst.match("www.bbc.co.uk") is None


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("nhs.uk\nbad domain here\n", ":2", "one domain per line"),
        ("# c\n\nexa_mple.com\n", ":3", "not a valid domain name"),
    ],
)
def test_bad_file_names_file_and_line(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "nd.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        NoDecryptList.build([path])
    assert info.value.where == f"{path}{where}"
    assert message in info.value.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        NoDecryptList.build([tmp_path / "absent.txt"])


def test_memory_remembers_per_device_and_destination_until_ttl() -> None:
    memory = PassthroughMemory(ttl=60)
    assert memory.remember("10.0.0.5", "App.Example", now=0)
    assert not memory.remember("::ffff:10.0.0.5", "app.example", now=1)
    assert memory.contains("10.0.0.5", "app.example", now=30)
    assert not memory.contains("10.0.0.6", "app.example", now=30)  # another device still intercepted
    assert not memory.contains("10.0.0.5", "other.example", now=30)
    assert not memory.contains("10.0.0.5", "app.example", now=61.5)
    assert len(memory) == 0


def test_memory_is_bounded_least_recently_used_first() -> None:
    memory = PassthroughMemory(ttl=60, max_entries=2)
    memory.remember("a", "x", now=0)
    memory.remember("b", "x", now=0)
    assert memory.contains("a", "x", now=1)  # a is now the most recently used
    memory.remember("c", "x", now=2)
    assert memory.contains("a", "x", now=3)
    assert not memory.contains("b", "x", now=3)
    assert memory.contains("c", "x", now=3)


def test_extra_entries_may_name_list_files(tmp_path: Path) -> None:
    extra = tmp_path / "ours.txt"
    extra.write_text("intranet.school.example\n")
    lst = NoDecryptList.build(extra=["bank.example", str(extra)])
    assert lst.match("www.intranet.school.example") == "intranet.school.example"
    assert lst.match("bank.example")
