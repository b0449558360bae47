"""``netmon library``: validate the phrase library (``check``), try a text on it (``test``); ``eval`` lives
in library_eval_cmd."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from netmon.config.paths import DEFAULT_LIBRARY_DIR

if TYPE_CHECKING:
    from netmon.scan.findings import Hit
    from netmon.scan.site_scope import Scoped


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
@click.option(
    "--url",
    default=None,
    metavar="URL",
    help="Treat the text as a page body from URL: the overlay's host-scoped lines for its host and path "
    "apply, and the intent grammar does not (as for a page).",
)
def test_cmd(text: str | None, library_dir: Path, overlay: Path | None, url: str | None) -> None:
    """Show what TEXT (or each line of standard input) would raise if a pupil typed it: every phrase and
    grammar rule that fires, its category and severity, where it is written, and why (the words that
    filled each slot of a rule, the exceptions weighed), then the risk model's four scores and what it
    raised or found on its own. With --url, TEXT is read as a page body from that URL and each phrase a
    host-scoped overlay line quiets there is shown with the line that quiets it. Exit status 0; nothing
    is recorded."""
    from netmon.errors import ConfigError
    from netmon.scan.library import load_library
    from netmon.scan.matching import Matcher
    from netmon.scan.scopes import Quieting

    page = _page(url) if url is not None else None
    try:
        matcher = Matcher.compile(load_library(library_dir, overlay))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    quieting = Quieting(matcher.library)
    from netmon.scan.model import shipped_or_none

    model = shipped_or_none() if page is None else None
    texts = [text] if text is not None else [line.rstrip("\n") for line in click.get_text_stream("stdin")]
    for n, item in enumerate(t for t in texts if t.strip()):
        if n:
            click.echo("")
        click.echo(f"text: {item!r}")
        if page is None:
            hits, quieted = _weighed(model, item, matcher.scan(item), matcher), []
        else:
            host, path = page
            click.echo(f"  as a page of {host} at {path} (page text: the intent grammar does not apply)")
            found = matcher.scan(item, grammar=False)
            hits = quieting.quiet(found, item, host, path)
            lines = quieting.lines_for(host, path)
            quieted = [(h, _quieted_by(h, lines)) for h in found if h not in hits]
        if not hits:
            click.echo("  nothing fires" + (" on this page" if quieted else ""))
        else:
            top = max(hits, key=lambda h: h.severity)
            click.echo(f"  highest: {top.category} severity {top.severity}")
        for h in sorted(hits, key=lambda h: (-h.severity, h.start)):
            click.echo(f"  {_hit(h)}")
            for why in h.rules:
                click.echo(f"      {_short(why)}")
            if h.steps:
                click.echo(f"      normalised: {', '.join(h.steps)}")
        for h, by in sorted(quieted, key=lambda q: (-q[0].severity, q[0].start)):
            click.echo(f"  quieted here: {_hit(h)}")
            for line in by:
                click.echo(f"      by {line.file}:{line.line}: {_scoped_line(line)}")


def _weighed(
    model: object | None, text: str, hits: list[Hit] | tuple[Hit, ...], matcher: object = None
) -> list[Hit]:
    """What the scan does with a text a pupil typed: the library's hits weighed by the risk model, and
    the model's own finding where it has one, then graded by the grammar's ``grave`` lines (as the scan
    job does); the model's four scores are printed first."""
    if model is None:
        return list(hits)
    from netmon.scan.findings import TextFinding
    from netmon.scan.signal import LABELS, weigh

    scores = model.score(text)  # type: ignore[attr-defined]
    click.echo("  model: " + ", ".join(f"{LABELS.get(c, c)} {p:.2f}" for c, p in scores.items()))
    found = [TextFinding(source="search", text=text, hits=tuple(hits))] if hits else []
    weighed = weigh(model, [("search", "", text)], found)  # type: ignore[arg-type]
    out = list(weighed[0].hits) if weighed else []
    gravity = getattr(matcher, "gravity", None)
    return list(gravity.lift(text, out)) if gravity else out


def _page(url: str) -> tuple[str, str]:
    """(host, path) of --url; a bare ``host/path`` is read as http."""
    from urllib.parse import urlsplit

    from netmon.scan.site_scope import page_path

    full = url.strip() if "://" in url else "http://" + url.strip()
    try:
        host = (urlsplit(full).hostname or "").rstrip(".")
    except ValueError:
        host = ""
    if not host:
        raise click.BadParameter(f"{url!r} has no host (e.g. https://example.org/news)", param_hint="--url")
    return host, page_path(full)


def _hit(h: Hit) -> str:
    kind = "rule" if h.phrase.startswith("rule ") else "phrase"
    name = h.phrase[5:] if kind == "rule" else repr(h.phrase)
    where = "the risk model" if h.library_file == "model" else f"{h.library_file}:{h.line}"
    return f"{h.category} {h.severity}  {kind} {name} ({where}) saw {h.matched_text!r}"


def _quieted_by(h: Hit, lines: list[Scoped]) -> list[Scoped]:
    """The scoped lines for this page that name the hit's phrase: its removal if there is one, else the
    lines whose exception phrases (taken together, as the scan takes them) cancelled it."""
    from netmon.scan.normalise import normalise

    mine = [line for line in lines if line.key == (h.category, normalise(h.phrase))]
    return [line for line in mine if line.removal] or mine


def _scoped_line(line: Scoped) -> str:
    """A scoped line as it is written in the overlay."""
    on = f"on: {', '.join(line.scopes)}"
    if line.removal:
        return f"-{line.phrase} | {on}"
    unless = ", ".join(line.unless[:6]) + (
        f" and {len(line.unless) - 6} more" if len(line.unless) > 6 else ""
    )
    return f"{line.phrase} | {on}; unless: {unless}"


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
