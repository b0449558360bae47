"""Start mitmdump with netmon's addons and a validated configuration.

mitmproxy silently ignores unknown keys in its config (STYLE.md): here every key of
``mitm_config.yaml`` and every ``--set`` is checked against the options that mitmproxy and netmon's
addons really declare, typos get a "did you mean", and relative paths are resolved against the file.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mitmproxy import exceptions, optmanager
from mitmproxy.addonmanager import Loader
from mitmproxy.options import Options

from netmon.errors import ConfigError

#: Options holding paths: relative values in the config file are resolved against the file's folder.
#: The composition root mitmdump loads: the one script of this package.
ENTRY = Path(__file__).resolve().with_name("entry.py")

PATH_OPTIONS = frozenset(
    {
        "netmon_library",
        "netmon_library_overlay",
        "netmon_policy",
        "netmon_state_dir",
        "confdir",
        "netmon_hash_lists",
        "netmon_url_lists",
        "netmon_no_decrypt_file",
        "netmon_filtering",
        "netmon_ut1",
    }
)
#: Options that sign with a publicly trusted third-party key: never allowed (issue 6, FACTS.md).
FORBIDDEN_OPTIONS = frozenset({"emudhra", "emudhra_old"})


def _walk(addons: Iterable[Any]) -> Iterable[Any]:
    for addon in addons:
        yield addon
        yield from _walk(getattr(addon, "addons", ()) or ())


def netmon_addons() -> list[Any]:
    from netmon_proxy.entry import build

    return build()


def option_manager() -> Options:
    """mitmproxy's options plus every option declared by mitmdump's and netmon's addons."""

    async def collect() -> Options:
        from mitmproxy.tools.dump import DumpMaster

        opts = Options()
        master = DumpMaster(opts, with_termlog=True, with_dumper=True)
        loader = Loader(master)
        try:
            for addon in _walk(netmon_addons()):
                if hasattr(addon, "load"):
                    addon.load(loader)
        finally:
            master._legacy_log_events.uninstall()  # its loop ends with this function
            if master._termlog_addon is not None:
                master._termlog_addon.uninstall()
        return opts

    return asyncio.run(collect())


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config: {exc.strerror}") from exc
    try:
        data = optmanager.parse(text)
    except exceptions.OptionsError as exc:
        from netmon.config.yamlfile import parse_yaml

        parse_yaml(text, str(path))  # the located one-line error (file, line, column, fix)
        raise ConfigError(str(path), f"not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must be a mapping of option: value")
    base = path.resolve().parent
    for key in PATH_OPTIONS & data.keys():
        value = data[key]
        if isinstance(value, str) and value:
            data[key] = str((base / value).resolve()) if not Path(value).is_absolute() else value
        elif isinstance(value, list):
            data[key] = [str((base / v).resolve()) if not Path(v).is_absolute() else v for v in value]
    return data


def validate(opts: Options, values: Mapping[str, Any], where: str) -> None:
    """Apply ``values`` to ``opts``: unknown keys, forbidden keys and bad values are ConfigErrors."""
    known = set(opts.keys())
    for key in values:
        if key in FORBIDDEN_OPTIONS:
            raise ConfigError(
                where,
                f"{key}: never enable this option: it signs with a publicly trusted "
                "third-party key and would intercept devices that never consented",
            )
        if key not in known:
            raise ConfigError(where, f"unknown option {key!r}{_suggest(key, known)}")
    from netmon_proxy.settings import check

    try:
        opts.update(**values)
        check(opts, set(values))
    except exceptions.OptionsError as exc:
        raise ConfigError(where, " ".join(str(exc).split())) from None
    except (TypeError, ValueError) as exc:  # a value mitmproxy cannot take: one line, never a traceback
        raise ConfigError(where, " ".join(str(exc).split())) from None
    _check_values(opts, set(values), where)


def _check_values(opts: Options, keys: set[str], where: str) -> None:
    """Values mitmproxy accepts at parse time but that cannot start: ports, URLs."""
    from urllib.parse import urlsplit

    if "listen_port" in keys and opts.listen_port is not None and not 0 < opts.listen_port < 65536:
        raise ConfigError(where, f"listen_port: must be 1-65535 (got {opts.listen_port})")
    for key in sorted(k for k in keys if k.endswith("_url") and k.startswith("netmon_")):
        value = getattr(opts, key, "")
        if value and (
            urlsplit(str(value)).scheme not in ("http", "https") or not urlsplit(str(value)).netloc
        ):
            raise ConfigError(
                where, f"{key}: must be a full http:// or https:// URL (got {value!r}, e.g. https://{value})"
            )


def parse_sets(specs: Sequence[str], opts: Options) -> dict[str, Any]:
    """``KEY=VALUE`` strings (as for ``--set``) to typed values."""
    grouped: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep:
            raise ConfigError("--set", f"{spec!r}: expected KEY=VALUE")
        grouped.setdefault(key.strip(), []).append(value)
    out: dict[str, Any] = {}
    for key, raw in grouped.items():
        if key not in opts.keys():
            if key in FORBIDDEN_OPTIONS:
                out[key] = raw
                continue
            raise ConfigError("--set", f"unknown option {key!r}{_suggest(key, opts.keys())}")
        try:
            out[key] = opts._parse_setval(opts._options[key], raw)
        except exceptions.OptionsError as exc:
            raise ConfigError("--set", f"{key}: {exc}") from exc
    return out


def to_set_args(opts: Options, keys: Iterable[str]) -> list[str]:
    """Serialise options as mitmdump ``--set`` arguments."""
    args: list[str] = []
    for key in keys:
        value = getattr(opts, key)
        if value is None:
            continue
        if isinstance(value, bool):
            args += ["--set", f"{key}={'true' if value else 'false'}"]
        elif isinstance(value, list | tuple):
            if not value:
                args += ["--set", f"{key}="] if opts._options[key].default else []
            for item in value:
                args += ["--set", f"{key}={item}"]
        else:
            args += ["--set", f"{key}={value}"]
    return args


def mitmdump_args(opts: Options, changed: Iterable[str]) -> list[str]:
    return ["-s", str(ENTRY), *to_set_args(opts, changed)]


def run_mitmdump(args: list[str]) -> None:
    from mitmproxy.tools.main import mitmdump

    mitmdump(args)


if __name__ == "__main__":  # a proxy worker started by `netmon run --workers N`
    import sys

    run_mitmdump(sys.argv[1:])
