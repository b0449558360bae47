"""``netmon library``: validate the phrase library (``check``), try a text on it (``test``); ``eval`` lives
in library_eval_cmd."""

from __future__ import annotations

from pathlib import Path

import click

from netmon.config.paths import DEFAULT_LIBRARY_DIR


@click.group()
def library() -> None:
    """Check, try and evaluate the phrase library."""


@library.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--overlay",
    type=click.Path(path_type=Path),
    default=None,
    help="The school's overlay directory, checked on top of the library.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, not the counts.")
@click.option("--no-warnings", is_flag=True, help="Do not print warnings (errors only).")
def check(paths: tuple[Path, ...], overlay: Path | None, quiet: bool, no_warnings: bool) -> None:
    """Validate library files: every problem as FILE:LINE: error|warning: MESSAGE, then phrase counts per
    category and language. PATH is a library directory (holding categories.txt) or one category file;
    default: the default library (plus --overlay). Exit status 1 when there is an error."""
    from netmon.scan.library import check_paths

    report = check_paths(list(paths) or [_shown(DEFAULT_LIBRARY_DIR)], overlay=overlay)
    for problem in report.problems:
        if problem.level == "warning" and no_warnings:
            continue
        click.echo(str(problem), err=problem.level == "error")
    if not quiet:
        _print_counts(report.counts, report.categories)
    errors, warnings = len(report.errors), len(report.warnings)
    phrases = sum(n for _, _, n in report.counts)
    click.echo(
        f"{report.files} files, {phrases} phrases: {errors} error{'s' * (errors != 1)}, "
        f"{warnings} warning{'s' * (warnings != 1)}"
    )
    if errors:
        raise SystemExit(1)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _print_counts(counts: tuple[tuple[str, str, int], ...], categories: tuple[str, ...]) -> None:
    languages = sorted({lang for _, lang, _ in counts})
    table: dict[str, dict[str, int]] = {c: {} for c in categories}
    for category, lang, n in counts:
        table.setdefault(category, {})[lang] = n
    width = max([len("category"), *map(len, table)])
    click.echo(f"{'category':<{width}}  " + "  ".join(f"{lang:>5}" for lang in languages) + "  total")
    for category in sorted(table):
        row = table[category]
        cells = "  ".join(f"{row.get(lang, 0):>5}" for lang in languages)
        click.echo(f"{category:<{width}}  {cells}  {sum(row.values()):>5}")


@library.command("test")
@click.argument("text", required=False)
@click.option(
    "--library",
    "library_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=DEFAULT_LIBRARY_DIR,
    show_default="the default library",
    help="Library directory (holds categories.txt).",
)
@click.option(
    "--overlay",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The school's overlay directory, applied on top of the library.",
)
def test_cmd(text: str | None, library_dir: Path, overlay: Path | None) -> None:
    """Show what TEXT (or each line of standard input) would raise: every phrase and grammar rule that
    fires, its category and severity, where it is written, and why (the words that filled each slot of a
    rule, the exceptions weighed). Exit status 0; nothing is recorded."""
    from netmon.errors import ConfigError
    from netmon.scan.library import load_library
    from netmon.scan.matching import Matcher

    try:
        matcher = Matcher.compile(load_library(library_dir, overlay))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    texts = [text] if text is not None else [line.rstrip("\n") for line in click.get_text_stream("stdin")]
    for n, item in enumerate(t for t in texts if t.strip()):
        if n:
            click.echo("")
        hits = matcher.scan(item)
        click.echo(f"text: {item!r}")
        if not hits:
            click.echo("  nothing fires")
            continue
        top = max(hits, key=lambda h: h.severity)
        click.echo(f"  highest: {top.category} severity {top.severity}")
        for h in sorted(hits, key=lambda h: (-h.severity, h.start)):
            kind = "rule" if h.phrase.startswith("rule ") else "phrase"
            name = h.phrase[5:] if kind == "rule" else repr(h.phrase)
            where = f"{h.library_file}:{h.line}"
            click.echo(f"  {h.category} {h.severity}  {kind} {name} ({where}) saw {h.matched_text!r}")
            for why in h.rules:
                click.echo(f"      {_short(why)}")
            if h.steps:
                click.echo(f"      normalised: {', '.join(h.steps)}")


def _short(why: str, terms: int = 6) -> str:
    """A long list of exception phrases cut to its first few."""
    head, sep, tail = why.partition(": ")
    parts = tail.split(", ")
    if not sep or len(parts) <= terms:
        return why
    return f"{head}: {', '.join(parts[:terms])} and {len(parts) - terms} more"


def _add_eval() -> None:
    from netmon.cli.library_eval_cmd import eval_cmd

    library.add_command(eval_cmd, "eval")


_add_eval()
