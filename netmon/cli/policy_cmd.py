"""``netmon policy check [DIR]``: validate the policy directory (groups, recording, alert rules,
filtering)."""

from __future__ import annotations

from pathlib import Path

import click

from netmon.config.paths import DEFAULT_POLICY_DIR


@click.group()
def policy() -> None:
    """Check the school's policy (groups, recording, alert rules)."""


@policy.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option(
    "--library",
    "library_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Library directory whose categories.txt the policy's categories are checked against.",
)
def check(directory: Path | None, library_dir: Path | None) -> None:
    """Validate school.yaml, alerts.yaml and filtering.yaml in DIRECTORY (default: netmon's policy/).

    Prints one line per problem as file: key: message and exits 1 when there is an error.
    """
    from netmon.config.checks import display_path
    from netmon.config.paths import DEFAULT_LIBRARY_DIR
    from netmon.config.policy import check_policy
    from netmon.errors import ConfigError
    from netmon.lists.filtering import FILE_NAME, load_filtering

    root = directory or DEFAULT_POLICY_DIR
    if not root.is_dir():
        raise click.ClickException(f"{root}: no such policy directory")
    policy, problems = check_policy(root, library_dir=library_dir or DEFAULT_LIBRARY_DIR)
    for warning in problems.warnings:
        click.echo(f"warning: {warning}", err=True)
    errors = list(problems.errors)
    filtering = root / FILE_NAME
    if filtering.exists():
        try:
            for warning in load_filtering(display_path(filtering)).warnings:
                click.echo(f"warning: {warning}", err=True)
        except ConfigError as exc:
            errors.append(exc)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if policy is None or errors:
        raise SystemExit(1)
    active = [r for r in policy.rules if r.enabled]
    click.echo(
        f"policy OK: {len(policy.groups)} groups, {len(active)} alert rule(s) "
        f"({', '.join(r.name for r in active) or 'none'})"
    )
