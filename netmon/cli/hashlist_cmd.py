"""``netmon hashlist``: check known-image hash lists, and hash images into list lines."""

from __future__ import annotations

from pathlib import Path

import click

from netmon.lists.hashlists import HASH_TYPES, HEADER, check_hash_list, format_entry


@click.group()
def hashlist() -> None:
    """Known-image hash lists (CSV type,hash,category,severity,source)."""


@hashlist.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate hash list FILES; every problem is printed as FILE:LINE: message."""
    failed = 0
    for path in files:
        report = check_hash_list(path)
        for error in report.errors:
            click.echo(error, err=True)
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        if report.errors:
            failed += 1
            click.echo(
                f"{path}: {len(report.errors)} problem(s), {len(report.entries)} good entries", err=True
            )
        else:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "no entries"
            click.echo(f"{path}: ok, {len(report.entries)} entries ({counts})")
    if failed:
        raise SystemExit(1)


@hashlist.command("hash")
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--category", required=True, help="Category of the new entries, e.g. csam.")
@click.option("--severity", type=click.IntRange(1, 5), default=5, show_default=True)
@click.option("--source", default="local", show_default=True, help="Who supplied the images.")
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(sorted(HASH_TYPES)),
    help="Hash types to print (repeatable; default sha256 and phash).",
)
@click.option("--header/--no-header", default=False, help="Print the CSV header line first.")
def hash_cmd(
    images: tuple[Path, ...], category: str, severity: int, source: str, types: tuple[str, ...], header: bool
) -> None:
    """Print list lines for IMAGES (hashes only: the images are read, never copied)."""
    from netmon.lists.imagehashing import ImageSkip, hash_image

    kinds = types or ("sha256", "phash")
    if header:
        click.echo(",".join(HEADER))
    failed = False
    for path in images:
        hashes = hash_image(path.read_bytes())
        if isinstance(hashes, ImageSkip):
            click.echo(f"{path}: not hashed ({hashes.reason})", err=True)
            failed = True
            continue
        for kind in kinds:
            click.echo(format_entry(kind, hashes.digest(kind), category, severity, source))
    if failed:
        raise SystemExit(1)
