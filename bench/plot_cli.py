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


def plot(
    file: Annotated[
        Path,
        typer.Argument(help="A report (run/compare --json), a chaos or a scale result (--json)."),
    ],
    out: Annotated[Path, typer.Option("--output", "-o", help="The image to write: .png or .svg.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Draw a saved report (ops/s bars, or lines over a scan), a chaos result (error over
    virtual time, faults shaded) or a scale curve (log-log, fitted growth) as a PNG or
    SVG image."""
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
    plot_report(read_plottable(file), out, force)
    typer.echo(f"plot written to {out}")
