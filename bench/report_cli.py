"""Commands on saved reports: ``report show``, ``report validate``, ``report pyperf`` and
``diff``.

They only read reports (``report pyperf`` writes one export file) and never measure. Bad
input (a missing file, a directory, a file that is not a countbench report of schema 1,
an unknown ``--format``, a ``--fail-above`` that is not like '10%' or 0.1) raises
:class:`~countbench.reports.load.ReportError` (or its subclass ``ReportUsageError``) with
a one-line message, and an unwritable output path raises ``ReportPathError``: the
``countbench`` entry point turns both into one line on stderr and exit status 2.

``diff`` is the CI gate: it exits 1 when the new report has a performance regression
(ops/s fell by more than ``--fail-above``, significantly) or a consistency regression
(see :mod:`countbench.reports.diff`), and 0 otherwise.

Registered in ``bench/cli.py`` as::

    app.add_typer(report_app, name="report")
    app.command("diff")(diff)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..reports import table as tables
from ..reports.csv_export import to_csv
from ..reports.diff import DiffResult, PairDiff, diff_reports, parse_threshold
from ..reports.load import SCHEMA_VERSION, ReportUsageError, load_report
from ..reports.markdown import to_markdown
from ..reports.numbers import p_text, short

FORMATS = ("table", "md", "csv")

report_app = typer.Typer(
    help="Read saved JSON reports: show them as a table, Markdown or CSV; validate them; "
    "export their timings for pyperf.",
    no_args_is_help=True,
)

ReportArg = Annotated[Path, typer.Argument(help="A JSON report written by --json.")]


def _plain(text: str) -> None:
    """Text as is on stdout (no Rich markup, no wrapping)."""
    typer.echo(text, nl=False)


@report_app.command("show")
def show(
    file: ReportArg,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="table, md (Markdown) or csv.")
    ] = "table",
) -> None:
    """Print a saved report: the comparison table, Markdown for a pull request, or CSV."""
    chosen = output_format.strip().lower()
    if chosen not in FORMATS:
        raise ReportUsageError(f"unknown --format {output_format!r} (choose {', '.join(FORMATS)})")
    report = load_report(file)
    if chosen == "md":
        _plain(to_markdown(report))
    elif chosen == "csv":
        _plain(to_csv(report))
    else:
        Console().print(tables.comparison(report))


@report_app.command("validate")
def validate(file: ReportArg) -> None:
    """Check that a file is a countbench report this version reads (schema 1)."""
    load_report(file)
    typer.echo(f"{file}: valid countbench report (schema {SCHEMA_VERSION})")


@report_app.command("pyperf")
def export_pyperf(
    file: ReportArg,
    output: Annotated[Path, typer.Argument(help="The pyperf JSON file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a report's timings as a pyperf file, for `python -m pyperf compare_to|stats`."""
    from ..reports.pyperf_export import write_pyperf_suite

    report = load_report(file)
    write_pyperf_suite(report, output, force)
    typer.echo(f"pyperf file written to {output}")


def _verdict(pair: PairDiff, result: DiffResult) -> Text:
    if result.unjudged or pair.p_value is None:
        return Text("not judged", style=tables.DIM)
    return Text("REGRESSION", style="bold red") if pair.regression else Text("no")


def diff_table(result: DiffResult) -> Table:
    """One row per (strategy, operation) in both reports; fits 80 columns."""
    table = Table(
        title=f"countbench diff · ops/s (median of processes) · fail above a "
        f"{result.fail_above:.1%} slowdown with p < {result.alpha} (Mann-Whitney U on processes)",
        title_justify="left",
    )
    table.add_column("Benchmark")
    for column in ("base", "new", "change", "procs", "p"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("sig.")
    table.add_column("regression", no_wrap=True)
    for pair in result.pairs:
        change_style = "red" if pair.change_pct < 0 else "green"
        table.add_row(
            f"{pair.strategy} {pair.operation}",
            short(pair.base_ops_per_sec),
            short(pair.new_ops_per_sec),
            Text(f"{pair.change_pct:+.1f}%", style=change_style if pair.significant else ""),
            f"{pair.n_base}/{pair.n_new}",
            p_text(pair.p_value),
            "yes" if pair.significant else "no",
            _verdict(pair, result),
        )
    return table


def print_diff(result: DiffResult, console: Console) -> None:
    """The table, then the consistency changes, strategies in one report only, notes,
    warnings, and one verdict line."""
    if result.pairs:
        console.print(diff_table(result))

    def say(text: str, style: str = "") -> None:
        console.print(Text(text, style=style), soft_wrap=True)

    for change in result.consistency:
        label = "consistency regression" if change.failure else "consistency changed"
        say(f"{label}: {change.describe()}", "bold red" if change.failure else "")
    if result.only_in_base:
        say(f"only in the base report: {', '.join(result.only_in_base)}")
    if result.only_in_new:
        say(f"only in the new report: {', '.join(result.only_in_new)}")
    notes = sorted({p.note for p in result.pairs if p.note})
    for note in [*result.notes, *notes]:
        say(f"note: {note}")
    for warning in result.warnings:
        say(f"warning: {warning}", "yellow")
    if result.failed:
        what = [f"{p.strategy} {p.operation} {p.change_pct:+.1f}%" for p in result.regressions]
        what += [c.strategy + " consistency" for c in result.consistency_failures]
        say(f"FAILED: {', '.join(what)}", "bold red")
    elif result.unjudged:
        say(
            f"NOT JUDGED: {result.unjudged}; measure both on one workload, or pass "
            "--allow-workload-change",
            "bold yellow",
        )
    elif result.untested:
        say(
            "NOT JUDGED: not enough independent samples to judge any operation's speed; "
            "make both reports with --preset ci (or --processes 4 or more)",
            "bold yellow",
        )
    else:
        say(f"ok: no significant slowdown above {result.fail_above:.1%}, no consistency loss")


def diff(
    files: Annotated[
        list[Path],
        typer.Argument(help="BASE.json NEW.json, or only NEW.json with --baseline."),
    ],
    fail_above: Annotated[
        str,
        typer.Option(
            "--fail-above",
            help="Largest tolerated significant fall of ops/s: '10%' or 0.1.",
        ),
    ] = "10%",
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Compare against the report saved with --save NAME."),
    ] = None,
    allow_workload_change: Annotated[
        bool,
        typer.Option(
            "--allow-workload-change",
            help="Judge slowdowns even when the two reports ran different workloads.",
        ),
    ] = False,
) -> None:
    """Compare two reports: exit 1 on a significant slowdown or a lost exact count.

    Exit 1 when an operation got slower by more than --fail-above and significantly so
    (Mann-Whitney U on the worker processes' ops/s), or a strategy's count stopped being
    exact; 2 when nothing could be judged (the workloads differ, or too few processes to
    test any operation); else 0.
    """
    from .baselines import baseline_path

    if baseline is not None:
        if len(files) != 1:
            raise ReportUsageError("with --baseline, give one report: the new one")
        base, new = baseline_path(baseline), files[0]
    elif len(files) == 2:
        base, new = files
    else:
        raise ReportUsageError("give two reports, BASE.json NEW.json (or --baseline NAME)")
    threshold = parse_threshold(fail_above)
    result = diff_reports(load_report(base), load_report(new), threshold, allow_workload_change)
    print_diff(result, Console())
    raise typer.Exit(1 if result.failed else 2 if result.unjudged or result.untested else 0)
