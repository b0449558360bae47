"""``netmon policy check [DIR]``: validate the policy directory (groups, recording, alert rules,
filtering), with this site's overlay; ``netmon policy show [DIR]``: every value in force, and the file it
came from (the trust-wide policy or the site's overlay)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from netmon.config.paths import DEFAULT_POLICY_DIR

_SITE_HELP = (
    "The site whose overlay (DIR/sites/SITE/) is merged over the trust-wide files (default: NETMON_SITE; "
    "'' for the trust-wide policy alone)."
)


@click.group()
def policy() -> None:
    """Check the school's policy (groups, recording, alert rules), or show it with where each value came
    from."""


def _root(directory: Path | None) -> Path:
    root = directory or DEFAULT_POLICY_DIR
    if not root.is_dir():
        raise click.ClickException(f"{root}: no such policy directory")
    return root


@policy.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option(
    "--library",
    "library_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Library directory whose categories.txt the policy's categories are checked against.",
)
@click.option("--site", default=None, help=_SITE_HELP)
def check(directory: Path | None, library_dir: Path | None, site: str | None) -> None:
    """Validate school.yaml, alerts.yaml and filtering.yaml in DIRECTORY (default: netmon's policy/), with
    the site's overlay merged over them.

    Prints one line per problem as file: key: message and exits 1 when there is an error.
    """
    from netmon.config.checks import display_path
    from netmon.config.paths import DEFAULT_LIBRARY_DIR
    from netmon.config.policy import check_policy
    from netmon.errors import ConfigError
    from netmon.lists.filtering import FILE_NAME, load_filtering

    root = _root(directory)
    site = os.environ.get("NETMON_SITE", "") if site is None else site
    policy, problems = check_policy(root, library_dir=library_dir or DEFAULT_LIBRARY_DIR, site=site)
    for warning in problems.warnings:
        click.echo(f"warning: {warning}", err=True)
    errors = list(problems.errors)
    filtering = root / FILE_NAME
    if filtering.exists():
        try:
            for warning in load_filtering(display_path(filtering), site).warnings:
                click.echo(f"warning: {warning}", err=True)
        except ConfigError as exc:
            errors.append(exc)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if policy is None or errors:
        raise SystemExit(1)
    active = [r for r in policy.rules if r.enabled]
    where = f" for site {site} (overlay {display_path(root / 'sites' / site)})" if policy.site else ""
    click.echo(
        f"policy OK{where}: {len(policy.groups)} groups, {len(active)} alert rule(s) "
        f"({', '.join(r.name for r in active) or 'none'})"
    )


@policy.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--site", default=None, help=_SITE_HELP)
@click.option(
    "--file",
    "names",
    multiple=True,
    type=click.Choice(["school.yaml", "alerts.yaml", "filtering.yaml"]),
    help="Only this file (repeatable; default: all three).",
)
def show(directory: Path | None, site: str | None, names: tuple[str, ...]) -> None:
    """Print every value of the policy in force, one a line, with the file it came from.

    Each line is `FILE KEY = VALUE  (from SOURCE)`, where SOURCE is the trust-wide file or the site's
    overlay (DIR/sites/SITE/FILE). Values are as written, before validation: run `netmon policy check`.
    """
    from netmon.config.checks import Problems
    from netmon.config.overlay import read_merged

    root = _root(directory)
    site = os.environ.get("NETMON_SITE", "") if site is None else site
    problems = Problems()
    if site:
        click.echo(f"# site {site}: {root / 'sites' / site} over {root}")
    for name in names or ("school.yaml", "alerts.yaml", "filtering.yaml"):
        merged = read_merged(root, name, site, problems)
        if merged is None:
            continue
        for key, value, origin in merged.leaves():
            shown = json.dumps(value, ensure_ascii=False, default=str)
            click.echo(f"{name} {key} = {shown}  (from {origin})")
    for error in problems.errors:
        click.echo(f"error: {error}", err=True)
    if problems.errors:
        raise SystemExit(1)
