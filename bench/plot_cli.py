"""``countbench plot``: draw a saved report or chaos result as a PNG or SVG chart.

Registered in ``bench/cli.py`` as::

    app.command("plot")(plot)

The input is recognised by its content: a chaos result (``countbench chaos --json``,
``tool.command == "chaos"``) and a scale curve (``countbench scale --json``, ``kind ==
"countbench-scale"``) are read as plain JSON; anything else must be a countbench
report (validated as ``load_report`` does; with a parameter ``scan``, every point's report
is validated too). See :mod:`countbench.reports.plot` for the charts.

Bad input (a missing or invalid file, an output suffix other than .png/.svg) raises
:class:`~countbench.reports.load.ReportError` / ``ReportUsageError``, and an output that
exists (without ``--force``) or cannot be written raises ``ReportPathError``: one line on
stderr and exit status 2 from the ``countbench`` entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def read_plottable(file: Path) -> dict[str, Any]:
    """The chaos result or validated report stored at ``file``; ReportError (one line)."""
    from ..reports.load import _parse, _read_text, validate
    from ..reports.plot import is_chaos_result, is_scale_result

    document = _parse(file, _read_text(file))
    if isinstance(document, dict) and (is_chaos_result(document) or is_scale_result(document)):
        return document
    return validate(document, file)  # a scan's points too


def trend_scan(name: str, last: int) -> dict[str, Any]:
    """The latest ``last`` runs saved as ``name``, as a scan over the runs (so the scan
    chart draws them: ops/s against the run, a line per strategy, or per strategy and
    point for saved scans, as ``diff --trend`` lists them). Runs saved in the same minute
    from one commit are numbered apart."""
    from ..reports.load import load_report, named_results
    from ..reports.trend import saved_run
    from .baselines import history

    reports = [load_report(path) for path in history(name)[-last:]]
    labels = [saved_run(r).label for r in reports]
    labels = [f"{t} #{i}" if labels.count(t) > 1 else t for i, t in enumerate(labels, 1)]
    points = [
        {"value": label, "report": {**r, "results": _flat(named_results(r))}}
        for label, r in zip(labels, reports, strict=True)
    ]
    return {**reports[-1], "scan": {"parameter": f"run saved as {name}", "points": points}}


def _flat(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Results renamed by their key (``name @ parameter=value`` for a scan's points)."""
    return [{**r, "strategy": {**r["strategy"], "name": key}} for key, r in results.items()]


def plot(
    out: Annotated[Path, typer.Option("--output", "-o", help="The image to write: .png or .svg.")],
    file: Annotated[
        Path | None,
        typer.Argument(help="A report (run/compare --json), a chaos or a scale result (--json)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    trend: Annotated[
        str | None,
        typer.Option("--trend", help="Instead: the runs saved with --save NAME, oldest first."),
    ] = None,
    last: Annotated[
        int, typer.Option("--last", min=1, max=1000, help="With --trend: the latest N runs.")
    ] = 20,
) -> None:
    """Draw a saved report (ops/s bars, or lines over a scan), a chaos result (error over
    virtual time, faults shaded), a scale curve (log-log, fitted growth) or the trend of
    a saved baseline as a PNG or SVG image."""
    from ..reports.load import ReportUsageError
    from ..reports.plot import plot_format, plot_report

    try:
        import matplotlib  # noqa: F401  (an extra: pip install 'countbench[plot]')
    except ImportError:
        raise ReportUsageError(
            "countbench plot needs matplotlib: pip install 'countbench[plot]' "
            "(or pip install '.[plot]' from a clone)"
        ) from None
    plot_format(out)  # a bad suffix is reported before the input is read
    if (file is None) == (trend is None):
        raise ReportUsageError("give one report FILE, or --trend NAME")
    if trend is not None:
        plot_report(trend_scan(trend, last), out, force)
    else:
        assert file is not None
        plot_report(read_plottable(file), out, force)
    typer.echo(f"plot written to {out}")
