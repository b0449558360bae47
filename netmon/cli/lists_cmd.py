"""``netmon lists``: import UT1 category lists, check URL lists, look an address up."""

from __future__ import annotations

from pathlib import Path

import click

from netmon.errors import NetmonError


@click.group()
def lists() -> None:
    """URL lists (CTIRU/IWF style CSV) and UT1 category lists."""


@lists.group("import")
def import_group() -> None:
    """Import a list from its publisher's format."""


def _severity_pairs(values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name or not number.isdigit() or not 1 <= int(number) <= 5:
            raise click.BadParameter(f"expected CATEGORY=1..5 (got {value!r})", param_hint="--severity")
        out[name.strip()] = int(number)
    return out


@import_group.command("ut1")
@click.argument("directory", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Compiled file to write (default: <state dir>/lists/ut1.sqlite, used by `netmon run`).",
)
@click.option("--category", "categories", multiple=True, help="Import only this category (repeatable).")
@click.option(
    "--severity",
    "severities",
    multiple=True,
    metavar="CATEGORY=N",
    help="Severity 1-5 for a category's hits (repeatable; defaults per category).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="netmon's state directory (as given to `netmon run --state-dir`): the list is written to "
    "<state dir>/lists/ut1.sqlite. Default: $NETMON_STATE_DIR or ./var.",
)
@click.option(
    "--very-restrictive",
    is_flag=True,
    help="Also import very_restrictive_expression files (over-blocking risk: off by default).",
)
def import_ut1_cmd(
    directory: Path,
    output: Path | None,
    categories: tuple[str, ...],
    severities: tuple[str, ...],
    state_dir: Path | None,
    very_restrictive: bool,
) -> None:
    """Import the UT1 blacklists folder DIRECTORY (<category>/domains, urls, usage, expressions).

    DIRECTORY may also be the downloaded blacklists.tar.gz itself (read as a stream, never unpacked).
    """
    from netmon.lists.ut1 import import_ut1

    if output is None and state_dir is not None:
        output = state_dir / "lists" / "ut1.sqlite"
    try:
        report = import_ut1(
            directory,
            output,
            categories=categories or None,
            severities=_severity_pairs(severities),
            very_restrictive=very_restrictive,
        )
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or directory}: {exc.strerror or exc}") from exc
    for cat in report.imported:
        bad = f", {cat.bad_lines} bad lines skipped" if cat.bad_lines else ""
        click.echo(
            f"{cat.name}: {cat.domains} domains, {cat.urls} urls, {cat.expressions} expressions, "
            f"severity {cat.severity}{bad}"
        )
    for cat in report.skipped_whitelists:
        click.echo(f"{cat.name}: skipped (whitelist: usage {' '.join(cat.usage)}; not a block list)")
    total = sum(c.domains + c.urls for c in report.imported)
    click.echo(
        f"imported {total} entries in {len(report.imported)} categories into {report.output} "
        f"in {report.seconds:.1f}s"
    )


@lists.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate URL list FILES (CSV type,value,category,severity,source) with line numbers."""
    from collections import Counter

    from netmon.lists.urllists import check_url_list

    failed = 0
    for path in files:
        entries, errors = check_url_list(path)
        for error in errors:
            click.echo(error, err=True)
        if errors:
            failed += 1
            click.echo(f"{path}: {len(errors)} problem(s), {len(entries)} good entries", err=True)
        else:
            counts = Counter(e.type for e in entries)
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no entries"
            click.echo(f"{path}: ok, {len(entries)} entries ({detail})")
    if failed:
        raise SystemExit(1)


@lists.command()
@click.argument("address")
@click.option(
    "--group", "groups", multiple=True, help="A group of the person (repeatable); 'everyone' always."
)
@click.option(
    "--filtering",
    "filtering_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Filtering policy (default: policy/filtering.yaml).",
)
@click.option(
    "--url-list", "url_lists", multiple=True, type=click.Path(dir_okay=False), help="Extra URL list."
)
@click.option("--ut1", "ut1_path", default="", help="Compiled UT1 file (default: as the policy says).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="netmon's state directory, for the imported UT1 list (default: $NETMON_STATE_DIR or ./var).",
)
def lookup(
    address: str,
    groups: tuple[str, ...],
    filtering_file: Path | None,
    url_lists: tuple[str, ...],
    ut1_path: str,
    state_dir: Path | None,
) -> None:
    """Show which lists match ADDRESS (a URL or a hostname) and whether it would be blocked."""
    from netmon.config.paths import DEFAULT_POLICY_DIR
    from netmon.lists.filtering import FILE_NAME, build_lists, load_filtering

    if not ut1_path and state_dir is not None:
        imported = state_dir / "lists" / "ut1.sqlite"
        ut1_path = str(imported) if imported.is_file() else ""
    try:
        policy = load_filtering(filtering_file or DEFAULT_POLICY_DIR / FILE_NAME)
        built = build_lists(policy, (), url_lists, ut1_path)
    except NetmonError as exc:
        raise click.ClickException(str(exc)) from exc
    is_url = "/" in address
    allow = policy.allowed(address) if is_url else policy.allowed_host(address)
    if allow is not None:
        click.echo(f"allow-listed by {allow.where}: {allow.type} {allow.value} (reason: {allow.reason})")
        click.echo("decision: allow (never listed, never blocked)")
        return
    entries = built.lookup_url(address) if is_url else built.lookup_host(address)
    if not entries:
        click.echo("no list matches; decision: allow")
        return
    for e in entries:
        click.echo(f"{e.category} (severity {e.severity}): {e.type} {e.value} [{e.file}:{e.line}]")
    names = policy.names_for({"groups": list(groups)})
    blocked = policy.blocked(names, [e.category for e in entries])
    who = ", ".join(sorted(names))
    if blocked:
        click.echo(f"decision for {who}: block ({', '.join(blocked)}); an incident is recorded")
    else:
        click.echo(f"decision for {who}: monitor (page shown, incident recorded)")
