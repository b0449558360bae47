"""The school's Acceptable Use Policy (AUP): its version and its text in each language the school provides.

Files (editable without code), in ``<policy dir>/aup/``:

- ``aup.yaml``: ``version`` (any short string; change it whenever the text changes and everyone is asked
  to accept again), ``default_language`` (e.g. ``en``) and optional ``names`` (language code -> name).
- ``<lang>.txt`` (``en.txt``, ``cy.txt`` ...): the first line is the title; after it, paragraphs are
  separated by blank lines and lines starting with ``- `` are list items. Plain text: nothing in it is
  interpreted as HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from netmon.config.paths import DEFAULT_POLICY_DIR
from netmon.errors import ConfigError

DEFAULT_AUP_DIR = DEFAULT_POLICY_DIR / "aup"
LANGUAGE_NAMES = {"en": "English", "cy": "Cymraeg"}
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph (``kind == "p"``) or a bulleted list (``kind == "ul"``, one item per line)."""

    kind: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AupText:
    language: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Aup:
    version: str
    default_language: str
    texts: dict[str, AupText]
    names: dict[str, str]

    def text(self, language: str | None) -> AupText:
        """The text in ``language`` when the school provides it, else in the default language."""
        if language and language in self.texts:
            return self.texts[language]
        return self.texts[self.default_language]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.texts, key=lambda lang: (lang != self.default_language, lang)))


def _parse_text(path: Path, language: str) -> AupText:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read the AUP text: {exc}") from exc
    lines = raw.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise ConfigError(str(path), "empty: the first line must be the title, then the policy text")
    title = lines.pop(0).strip()
    blocks: list[Block] = []
    current: list[str] = []
    kind = "p"

    def flush() -> None:
        nonlocal current
        if current:
            blocks.append(Block(kind, tuple(current)))
        current = []

    for line in lines:
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        is_item = stripped.startswith("- ")
        if current and (kind == "ul") != is_item:
            flush()
        kind = "ul" if is_item else "p"
        current.append(stripped[2:].strip() if is_item else stripped)
    flush()
    if not blocks:
        raise ConfigError(str(path), "no policy text after the title line")
    return AupText(language, title, tuple(blocks))


def load_aup(directory: Path | None = None) -> Aup:
    """Load and validate the AUP in ``directory`` (default: the shipped ``policy/aup``)."""
    from netmon.config.yamlfile import load_yaml

    directory = Path(directory or DEFAULT_AUP_DIR)
    meta_path = directory / "aup.yaml"
    if not meta_path.exists():
        raise ConfigError(str(meta_path), "missing: create it with `version:` and `default_language:`")
    meta = load_yaml(meta_path, what="a mapping with `version:` and `default_language:`")
    unknown = set(meta) - {"version", "default_language", "names"}
    if unknown:
        raise ConfigError(
            str(meta_path),
            f"unknown key(s): {', '.join(sorted(map(str, unknown)))} "
            "(allowed: version, default_language, names)",
        )
    version = str(meta.get("version", "")).strip()
    if not _VERSION.match(version):
        raise ConfigError(
            f"{meta_path}: version", f"must be 1-50 letters, digits, '.', '_' or '-' (got {version!r})"
        )
    default = str(meta.get("default_language", "en"))
    names = dict(LANGUAGE_NAMES)
    extra = meta.get("names") or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"{meta_path}: names", "must map a language code to its name, e.g. `cy: Cymraeg`")
    names.update({str(k): str(v) for k, v in extra.items()})
    texts: dict[str, AupText] = {}
    for path in sorted(directory.glob("*.txt")):
        language = path.stem
        if not _LANG.match(language):
            raise ConfigError(str(path), "name the file by its language code, e.g. en.txt or cy.txt")
        texts[language] = _parse_text(path, language)
    if default not in texts:
        raise ConfigError(
            f"{meta_path}: default_language",
            f"no {default}.txt in {directory} (found: {', '.join(sorted(texts)) or 'none'})",
        )
    return Aup(version=version, default_language=default, texts=texts, names=names)


class AupSource:
    """Reloads the AUP when its files change; keeps the last good version when an edit is invalid."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or DEFAULT_AUP_DIR)
        self._stamp: tuple[tuple[str, float, int], ...] = ()
        self._aup: Aup | None = None
        self.error: ConfigError | None = None
        self.get()
        if self._aup is None and self.error is not None:
            raise self.error

    def _current_stamp(self) -> tuple[tuple[str, float, int], ...]:
        stamp = []
        for path in sorted(self.directory.glob("*")):
            try:
                st = path.stat()
            except OSError:
                continue
            stamp.append((path.name, st.st_mtime, st.st_size))
        return tuple(stamp)

    def get(self) -> Aup:
        stamp = self._current_stamp()
        if stamp != self._stamp or self._aup is None:
            try:
                self._aup = load_aup(self.directory)
                self.error = None
            except ConfigError as exc:
                self.error = exc
                if self._aup is None:
                    raise
            self._stamp = stamp
        return self._aup
