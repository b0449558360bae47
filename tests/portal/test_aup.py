"""The AUP files: version, English and Welsh text, clear errors, reload keeping the last good version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netmon.errors import ConfigError
from netmon.identity.aup import AupSource, load_aup


def test_shipped_aup_has_english_and_welsh() -> None:
    aup = load_aup()
    assert aup.version
    assert aup.languages[0] == "en" and "cy" in aup.languages
    assert aup.text("cy").title != aup.text("en").title
    assert aup.text("fr") is aup.text("en")  # a language the school does not provide: the default
    assert any(block.kind == "ul" for block in aup.text("en").blocks)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("version: ''\n", "version"),
        ("version: '2026 09 bad'\n", "version"),
        ("version: '1'\ndefault_language: fr\n", "no fr.txt"),
        ("version: '1'\ncolour: blue\n", "unknown key"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_aup_yaml_is_one_clear_line(aup_dir: Path, meta: str, message: str) -> None:
    (aup_dir / "aup.yaml").write_text(meta)
    with pytest.raises(ConfigError, match=message) as info:
        load_aup(aup_dir)
    assert "aup.yaml" in str(info.value) and "\n" not in str(info.value)


def test_empty_text_file_is_an_error(aup_dir: Path) -> None:
    (aup_dir / "cy.txt").write_text("\n\n")
    with pytest.raises(ConfigError, match="cy.txt"):
        load_aup(aup_dir)


def test_source_reloads_on_edit_and_keeps_last_good(aup_dir: Path) -> None:
    source = AupSource(aup_dir)
    assert source.get().version == "2026-09"
    meta = aup_dir / "aup.yaml"
    meta.write_text("version: '2027-01'\ndefault_language: en\n")
    os.utime(meta, (1, 1))
    assert source.get().version == "2027-01"
    meta.write_text("version: ''\n")
    os.utime(meta, (2, 2))
    assert source.get().version == "2027-01"  # invalid edit: the last good AUP stays
    assert source.error is not None and "version" in str(source.error)
