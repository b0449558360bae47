"""``netmon library eval``: measure the phrase library on a labelled corpus and on benign pages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from netmon.config.paths import DEFAULT_LIBRARY_DIR
from netmon.errors import ConfigError


@click.command("eval")
@click.argument("corpus", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--library",
    "library_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=DEFAULT_LIBRARY_DIR,
    show_default="the default library",
    help="Library directory to evaluate (holds categories.txt).",
)
@click.option(
    "--overlay",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A school's overlay directory, applied on top of the library.",
)
@click.option(
    "--min-recall",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Fail (exit 1) when recall at the expected category for messages graded 4-5 (all labelled "
    "messages if none is graded 4-5) is below this.",
)
@click.option(
    "--max-false-alarms",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Fail (exit 1) when false alarms per 1,000 benign pages exceed this (per 1,000 benign "
    "look-alikes when the corpus has no pages).",
)
@click.option(
    "--min-severity",
    type=click.IntRange(1, 5),
    default=3,
    show_default=True,
    help="Severity from which a hit on a benign page counts as a false alarm (and the default "
    "min_severity of labelled lines that give none).",
)
@click.option(
    "--max-trap-alarms",
    type=click.IntRange(min=0),
    default=None,
    help="Fail (exit 1) when more benign look-alikes (expect null) than this raise an alarm.",
)
@click.option(
    "--lang",
    "langs",
    multiple=True,
    metavar="CODE",
    help='Measure only the labelled messages whose "lang" is CODE (repeatable: --lang ur --lang pa); '
    "benign pages are kept.",
)
@click.option(
    "--as",
    "path",
    type=click.Choice(["typed", "page", "library"]),
    default="typed",
    show_default=True,
    help="How items are scored. typed: each JSONL message as the scan job scores text a pupil typed "
    "(library + grammar + the risk model), benign pages as the job scores a page (library alone). "
    "page: every item as a page (library alone). library: matcher and grammar over the raw text, no "
    "model (the figures before this option).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of text.")
@click.option("--quiet", is_flag=True, help="Print the figures only, not every miss and false alarm.")
def eval_cmd(
    corpus: tuple[Path, ...],
    library_dir: Path,
    overlay: Path | None,
    min_recall: float | None,
    max_false_alarms: float | None,
    min_severity: int,
    max_trap_alarms: int | None,
    langs: tuple[str, ...],
    path: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Run the real matcher over CORPUS and print recall, precision and false alarms per category.

    CORPUS is any mix of JSONL files (one {"text", "expect": category or null, "min_severity": n} per
    line) and directories of plain pages that must stay quiet. Every miss and false alarm is listed with
    the phrase that fired (file:line). Figures are also given per language (the "lang" field): recall
    and quiet traps. ``--as`` chooses the scan path (printed in the header); on the typed path a line
    says how many messages the risk model raised. Exits 1 when a threshold given here is not met.
    """
    from netmon.scan import libeval
    from netmon.scan.libeval_paths import DESCRIPTIONS
    from netmon.scan.library import load_library
    from netmon.scan.matching import Matcher

    try:
        library = load_library(library_dir, overlay)
        corpus_items = libeval.load_corpus(corpus, [c.id for c in library.categories])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if langs:
        wanted = set(langs)
        corpus_items = [
            (path, [i for i in items if i.kind == "page" or i.lang in wanted]) for path, items in corpus_items
        ]
    matcher = Matcher.compile(library)
    model = None
    model_off = os.environ.get("NETMON_RISK_MODEL", "on").lower() in ("off", "0", "no", "false")
    if path == "typed" and not model_off:
        from netmon.scan.model import RiskModel

        try:
            model = RiskModel.load()
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(
                f"risk model: cannot load it ({type(exc).__name__}: {exc}); use --as library to measure"
                " the library and grammar alone"
            ) from None
    report = libeval.evaluate(
        matcher, corpus_items, min_severity, [c.id for c in library.categories], path=path, model=model
    )

    failures: list[str] = []
    if min_recall is not None:
        # The headline figure: messages graded 4-5; a corpus without any is judged on all its messages.
        recall, what = (
            (report.recall_high, "recall at severity >= 4") if report.high else (report.recall, "recall")
        )
        if recall is None:
            failures.append("no labelled message to measure recall on")
        elif recall < min_recall:
            failures.append(f"{what} is {recall:.3f}, below --min-recall {min_recall:g}")
    fa = report.false_alarms_per_1000
    if max_false_alarms is not None and fa is not None and fa > max_false_alarms:
        failures.append(
            f"{fa:.1f} false alarms per 1,000 benign items, above --max-false-alarms {max_false_alarms:g}"
        )
    if max_trap_alarms is not None and report.trap_alarms > max_trap_alarms:
        failures.append(
            f"{report.trap_alarms} benign look-alikes raised an alarm,"
            f" above --max-trap-alarms {max_trap_alarms}"
        )

    if as_json:
        data = libeval.report_json(report)
        data["library"] = str(library_dir)
        data["phrases"] = len(library)
        data["failures"] = failures
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(f"library: {library_dir} ({len(library)} phrases)")
        click.echo(f"scored as: {path} ({DESCRIPTIONS[path]})")
        if path == "typed" and model is None:
            click.echo(
                "risk model: off (NETMON_RISK_MODEL); messages scored by the library and grammar alone"
            )
        for source, n in report.sources:
            click.echo(f"corpus: {source} ({n} items)")
        click.echo("")
        for line in libeval.format_report(report, show=not quiet):
            click.echo(line)
        for failure in failures:
            click.echo(f"FAIL: {failure}", err=True)
    if failures:
        raise SystemExit(1)
