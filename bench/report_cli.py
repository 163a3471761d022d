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

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


class ShowFormat(StrEnum):
    """What ``report show`` prints: the terminal table, Markdown or CSV."""

    TABLE = "table"
    MD = "md"
    CSV = "csv"


class DiffFormat(StrEnum):
    """What ``diff`` prints: the terminal table, Markdown (a pull-request comment) or JSON."""

    TABLE = "table"
    MD = "md"
    JSON = "json"


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
        ShowFormat,
        typer.Option("--format", "-f", case_sensitive=False, help="md: Markdown."),
    ] = ShowFormat.TABLE,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every detail in the table, for ~190 columns.")
    ] = False,
) -> None:
    """Print a saved report: the comparison table, Markdown for a pull request, or CSV."""
    from ..reports import table as tables
    from ..reports.csv_export import to_csv
    from ..reports.load import load_report
    from ..reports.markdown import to_markdown

    report = load_report(file)
    if output_format is ShowFormat.MD:
        _plain(to_markdown(report))
    elif output_format is ShowFormat.CSV:
        _plain(to_csv(report))
    else:
        console = Console()
        for shown in tables.comparison_tables(report, wide):
            console.print(shown)


@report_app.command("validate")
def validate(file: ReportArg) -> None:
    """Check that a file is a countbench report this version reads (schema 1)."""
    from ..reports.load import SCHEMA_VERSION, load_report

    load_report(file)
    typer.echo(f"{file}: valid countbench report (schema {SCHEMA_VERSION})")


@report_app.command("pyperf")
def export_pyperf(
    file: ReportArg,
    output: Annotated[Path, typer.Argument(help="The pyperf JSON file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a report's timings as a pyperf file, for `python -m pyperf compare_to|stats`."""
    from ..reports.load import load_report
    from ..reports.pyperf_export import write_pyperf_suite

    report = load_report(file)
    write_pyperf_suite(report, output, force)
    typer.echo(f"pyperf file written to {output}")


def diff(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="BASE.json NEW.json, or only NEW.json with --baseline."),
    ] = None,
    fail_above: Annotated[
        str | None,
        typer.Option(
            "--fail-above",
            help="Largest tolerated significant fall of ops/s: '10%' or 0.1 (default 10%).",
        ),
    ] = None,
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
    output_format: Annotated[
        DiffFormat,
        typer.Option("--format", "-f", case_sensitive=False, help="md: a pull-request comment."),
    ] = DiffFormat.TABLE,
    trend: Annotated[
        str | None,
        typer.Option(
            "--trend",
            help="Instead: the ops/s of every run saved with --save NAME, oldest first.",
        ),
    ] = None,
    last: Annotated[
        int,
        typer.Option(
            "--last", min=1, max=1000, help="With --trend: the latest N runs (4 fit 80 columns)."
        ),
    ] = 4,
) -> None:
    """Compare two reports: exit 1 on a significant slowdown or a lost exact count.

    Exit 1 when an operation got slower by more than --fail-above and significantly so
    (Mann-Whitney U on the worker processes' ops/s), or a strategy's count stopped being
    exact; 2 when nothing could be judged (the workloads differ, or too few processes to
    test any operation); else 0.
    """
    import json

    from ..reports import diff_view
    from ..reports.diff import diff_reports, parse_threshold
    from ..reports.load import ReportUsageError, load_report
    from .baselines import baseline_path

    files = files or []
    if trend is not None:
        if files or baseline is not None:
            raise ReportUsageError("--trend NAME reads the saved runs: give no report files")
        if fail_above is not None or allow_workload_change:
            raise ReportUsageError(
                "--trend judges nothing: --fail-above and --allow-workload-change are for "
                "a diff of two reports"
            )
        _trend(trend, last, output_format)
        return
    if baseline is not None:
        if len(files) != 1:
            raise ReportUsageError("with --baseline, give one report: the new one")
        base, new = baseline_path(baseline), files[0]
    elif len(files) == 2:
        base, new = files
    else:
        raise ReportUsageError("give two reports, BASE.json NEW.json (or --baseline NAME)")
    threshold = parse_threshold("10%" if fail_above is None else fail_above)
    result = diff_reports(load_report(base), load_report(new), threshold, allow_workload_change)
    if output_format is DiffFormat.MD:
        _plain(diff_view.to_markdown(result))
    elif output_format is DiffFormat.JSON:
        _plain(json.dumps(diff_view.to_dict(result), indent=2, allow_nan=False) + "\n")
    else:
        diff_view.print_diff(result, Console())
    raise typer.Exit(1 if result.failed else 2 if result.unjudged or result.untested else 0)


def _trend(name: str, last: int, output_format: DiffFormat) -> None:
    """Print the trend of baseline ``name``'s latest ``last`` saved runs."""
    import json

    from ..reports import trend as trends
    from ..reports.load import load_report
    from .baselines import history

    reports = [load_report(path) for path in history(name)[-last:]]
    result = trends.trend(name, reports)
    if output_format is DiffFormat.MD:
        _plain(trends.to_markdown(result))
    elif output_format is DiffFormat.JSON:
        _plain(json.dumps(trends.to_dict(result), indent=2, allow_nan=False) + "\n")
    else:
        console = Console()
        console.print(trends.table(result))
        for note in result.notes:
            console.print(note, markup=False, highlight=False, style="yellow")
