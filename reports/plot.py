"""Charts of saved results, drawn with matplotlib's Agg backend (no display needed).

:func:`plot_report` draws one figure from one of four kinds of data:

* a benchmark report (``countbench run|compare --json``): a grouped bar chart of ops/s per
  strategy and operation, on a log scale, error bars = ``ops_per_sec_stdev``;
* a benchmark report with a parameter scan (a top-level ``"scan"``:
  ``{"parameter": "workers", "points": [{"value": 1, "report": {...}}, ...]}``, each
  ``report`` a whole report): ops/s against the scanned value, one subplot per operation
  (reads, writes, mixed) and one line per strategy, error bars = ``ops_per_sec_stdev``;
* a chaos result (``countbench chaos --json``, recognised by ``tool.command == "chaos"``):
  the largest |count - truth| over the live nodes against virtual time, as sampled in the
  client phase (``timeline``: at most 500 columns, each the max of its grid samples), with
  the applied fault windows shaded, the quiescence span, and the final error at ``end``.
  When the timeline also holds ``nodes`` (per node, aligned with ``max_error``, its
  signed errors, ``null`` while down: a list, or the run-length string ``countbench
  chaos`` writes, see :func:`run_length_series`) each node's |error| is drawn as one
  line (named in the legend up to :data:`NODES_IN_LEGEND` nodes, as one entry beyond);
* a scale curve (``countbench scale --json``, recognised by ``kind ==
  "countbench-scale"``): one log-log subplot per fitted figure (state bytes, sync bytes,
  merge time, memory...) against the scanned parameter (users, nodes, or retired + 1,
  the x the fit used), the measured points and the best fitted growth ``a + b * f(n)``
  drawn as a line, named in the legend with its relative RMS error. Points at or below 0
  (on either axis) cannot be shown on a log axis and are counted in the subplot's title.

The format is the output's suffix (``.png`` or ``.svg``); any other suffix is a
:class:`~countbench.reports.load.ReportUsageError`. The file is written atomically (a
temporary file in the same folder, then ``os.replace``) and an existing file is replaced
only with ``force`` (:func:`~countbench.reports.json_report.check_output_path`, whose
:class:`~countbench.reports.json_report.ReportPathError` the CLI shows as one line).
Data missing what a chart needs raises :class:`~countbench.reports.load.ReportError`.

matplotlib is imported on first use: the CLI does not pay for it unless it plots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .json_report import check_output_path, write_atomic
from .load import ReportError, ReportUsageError, one_line, scan_points
from .numbers import GROWTH, GROWTH_SHAPES, short, tick
from .verdicts import short_of_rate

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = {".png": "png", ".svg": "svg"}
OPERATIONS = ("reads", "writes", "mixed")
DPI = 120
#: Every figure is this wide: 880 pixels, what a pull-request comment or a README shows at
#: full size, so nothing is scaled down; no text is smaller than ``SMALLEST`` points.
WIDTH = 880 / DPI
SMALLEST = 8
#: Up to this many nodes, each node's line has its own legend entry.
NODES_IN_LEGEND = 10


def plot_format(out: Path) -> str:
    """The image format named by ``out``'s suffix; ReportUsageError for any other."""
    chosen = FORMATS.get(out.suffix.lower())
    if chosen is None:
        shown = repr(out.suffix) if out.suffix else "no suffix"
        raise ReportUsageError(
            f"{out}: cannot tell the image format from {shown} (use .png or .svg)"
        )
    return chosen


def is_chaos_result(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is what ``countbench chaos --json`` writes (not a benchmark report)."""
    tool = data.get("tool")
    if isinstance(tool, Mapping) and tool.get("command") == "chaos":
        return True
    return "timeline" in data and "verdict" in data and "results" not in data


def is_scale_result(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is what ``countbench scale --json`` writes."""
    return data.get("kind") == "countbench-scale"


def plot_report(data: dict[str, Any], out: Path, force: bool) -> None:
    """Draw the chart of ``data`` (a report, a scan report, a chaos result or a scale
    curve) into ``out``.

    Checks the suffix and the output path before drawing anything."""
    fmt = plot_format(out)
    check_output_path(out, force)
    import matplotlib

    matplotlib.use("Agg")
    if is_chaos_result(data):
        figure = chaos_figure(data)
    elif is_scale_result(data):
        figure = scale_figure(data)
    elif "scan" in data and data["scan"]["parameter"] == "rate":
        figure = latency_throughput_figure(data)
    elif "scan" in data:
        figure = scan_figure(data)
    else:
        figure = bars_figure(data)
    _save_atomic(figure, out, fmt, force)


def _lower_errors(values: Sequence[float], stdevs: Sequence[float]) -> list[float]:
    """Downward error bar lengths that stay above 0 (a log axis cannot show 0 or less)."""
    return [min(sd, 0.9 * v) for v, sd in zip(values, stdevs, strict=True)]


def _si_ticks(ax: Axes, which: str = "y") -> None:
    """Tick labels of the ``which`` axis as '2M', '500K'; on a log axis, the minor ticks
    that matplotlib would label (a range under a decade or two) too."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    class SiLogFormatter(LogFormatter):
        def __call__(self, x: float, pos: int | None = None) -> str:
            return tick(x) if super().__call__(x, pos) else ""

    axis, scale = (ax.xaxis, ax.get_xscale()) if which == "x" else (ax.yaxis, ax.get_yscale())
    axis.set_major_formatter(FuncFormatter(lambda v, _: tick(v)))
    if scale == "log":
        axis.set_minor_formatter(SiLogFormatter(labelOnlyBase=False))


def _wants_log(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(positive) and max(positive) > 10 * min(positive)


# --- benchmark reports --------------------------------------------------------------------


def _results(report: Mapping[str, Any], where: str = "report") -> list[dict[str, Any]]:
    results = report.get("results")
    if not isinstance(results, list) or not results:
        raise ReportError(f"{where} has no results to plot")
    return results


def _name(result: Mapping[str, Any]) -> str:
    return str(result["strategy"]["name"])


def _operation(result: Mapping[str, Any], op: str) -> tuple[float, float] | None:
    """(ops/s, its stdev) of one operation of one result, or None when it was not timed."""
    timing = result.get("operations", {}).get(op)
    if not isinstance(timing, Mapping) or "ops_per_sec" not in timing:
        return None
    return float(timing["ops_per_sec"]), float(timing.get("ops_per_sec_stdev", 0.0))


def _conditions(report: Mapping[str, Any], skip: str = "") -> str:
    """'thread mode, 2 workers, 3 nodes, 1000 users, preset quick' from what the report has
    (without ``skip``, a scanned parameter)."""
    workload = {k: v for k, v in (report.get("workload") or {}).items() if k != skip}
    parts = []
    if "mode" in report and skip != "mode":
        parts.append(f"{report['mode']} mode")
    for key, unit in (("workers", "workers"), ("nodes", "nodes"), ("users", "users")):
        if key in workload:
            parts.append(f"{workload[key]} {unit}")
    if "preset" in report:
        parts.append(f"preset {report['preset']}")
    text = ", ".join(parts)
    if report.get("preset") == "smoke":
        text += "\nsmoke: one value per benchmark, checks a setup, not for figures"
    return text


def bars_figure(report: Mapping[str, Any]) -> Figure:
    """One panel per operation, side by side, a horizontal bar per strategy (the names
    once, on the left); log ops/s. As tall as the strategies need, never wider than
    :data:`WIDTH`."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    results = _results(report)
    names = [_name(r) for r in results]
    ops = [op for op in OPERATIONS if any(_operation(r, op) for r in results)]
    if not ops:
        raise ReportError("report has no timed operation to plot")
    figure = Figure(figsize=(WIDTH, 1.6 + 0.32 * len(names)), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, len(ops), sharey=True, squeeze=False)[0]
    rows = range(len(names))
    for ax, op, colour in zip(axes, ops, ("tab:blue", "tab:orange", "tab:green"), strict=False):
        positions, values, stdevs = [], [], []
        for y, result in zip(rows, results, strict=True):
            measured = _operation(result, op)
            if measured is not None and measured[0] > 0:
                positions.append(y)
                values.append(measured[0])
                stdevs.append(measured[1])
        bars = ax.barh(
            positions,
            values,
            0.7,
            xerr=[_lower_errors(values, stdevs), stdevs],
            capsize=2,
            color=colour,
        )
        ax.bar_label(bars, labels=[short(v) for v in values], fontsize=SMALLEST, padding=2)
        ax.set_xscale("log")
        _si_ticks(ax, "x")
        ax.xaxis.set_minor_formatter(NullFormatter())  # a narrow panel: decades only
        ax.margins(x=0.35)
        ax.tick_params(which="both", labelsize=SMALLEST)
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.set_title(op, fontsize=9)
        ax.set_xlabel("ops/s (log)", fontsize=SMALLEST)
    axes[0].set_yticks(list(rows), labels=names)
    axes[0].invert_yaxis()  # the report's order, top down
    figure.suptitle(
        f"countbench: ops/s, median of processes ± their stdev\n{_conditions(report)}",
        fontsize=9,
    )
    return figure


def _scan(report: Mapping[str, Any]) -> tuple[str, list[Any], list[Mapping[str, Any]]]:
    """(parameter, values, reports) of a scan (a validated report)."""
    points = scan_points(report)
    return points[0][0], [value for _, value, _ in points], [point for _, _, point in points]


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _scan_axis(ax: Axes, values: Sequence[Any]) -> list[float]:
    """x positions of the scanned values: the values themselves when they are numbers
    (log2 axis when positive and spanning 8x or more), else categories in order."""
    from matplotlib.ticker import NullLocator

    if not _numeric(values):
        positions = [float(i) for i in range(len(values))]
        labels = [str(v) for v in values]
        crowded = sum(map(len, labels)) > 60  # e.g. saved runs: a date and a commit each
        ax.set_xticks(positions, labels=labels, rotation=35 if crowded else 0)
        if crowded:
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
        return positions
    positions = [float(v) for v in values]
    if min(positions) > 0 and max(positions) >= 8 * min(positions):
        ax.set_xscale("log", base=2)
    distinct = sorted(set(positions))
    ax.set_xticks(distinct, labels=[f"{v:g}" for v in distinct])
    ax.xaxis.set_minor_locator(NullLocator())
    return positions


def scan_figure(report: Mapping[str, Any]) -> Figure:
    """ops/s against the scanned parameter: one subplot per operation, a line per strategy."""
    from matplotlib.figure import Figure

    parameter, values, reports = _scan(report)
    for index, point_report in enumerate(reports):
        _results(point_report, f"scan point {index} ({parameter} = {values[index]})")
    names: list[str] = []
    for point_report in reports:
        names += [n for n in map(_name, point_report["results"]) if n not in names]
    figure = Figure(figsize=(WIDTH, 2.3 * len(OPERATIONS) + 1.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(len(OPERATIONS), 1, sharex=True)
    for ax, op in zip(axes, OPERATIONS, strict=True):
        positions = _scan_axis(ax, values)
        plotted: list[float] = []
        for rank, name in enumerate(names):
            xs, ys, sds = [], [], []
            for x, point_report in zip(positions, reports, strict=True):
                result = next((r for r in point_report["results"] if _name(r) == name), None)
                measured = None if result is None else _operation(result, op)
                if measured is not None and measured[0] > 0:
                    xs.append(x)
                    ys.append(measured[0])
                    sds.append(measured[1])
            if not xs:
                continue
            order = sorted(range(len(xs)), key=xs.__getitem__)
            xs, ys, sds = [xs[i] for i in order], [ys[i] for i in order], [sds[i] for i in order]
            ax.errorbar(
                xs,
                ys,
                yerr=[_lower_errors(ys, sds), sds],
                capsize=3,
                label=name,
                color=f"C{rank % 10}",  # past ten strategies the colours repeat: the
                marker="osD^v"[rank // 10 % 5],  # marker and the line tell them apart
                linestyle=("-", "--", ":")[rank // 10 % 3],
            )
            plotted += ys
        if _wants_log(plotted):
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        _si_ticks(ax)
        ax.tick_params(which="both", labelsize=SMALLEST)
        ax.set_ylabel(f"{op} ops/s", fontsize=SMALLEST)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(parameter, fontsize=SMALLEST)
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=min(4, max(1, len(names))),
        fontsize=SMALLEST,
    )
    figure.suptitle(
        f"countbench: ops/s against {parameter}, median of processes ± their stdev\n"
        f"{_conditions(reports[0], skip=parameter)}",
        fontsize=9,
    )
    return figure


#: The percentiles of latency from the intended start a rate scan's chart draws, a panel
#: each.
RATE_PERCENTILES = ("p50", "p99", "p99.9")


def latency_throughput_figure(report: Mapping[str, Any]) -> Figure:
    """A ``--param rate=...`` scan of open-loop runs: latency from each call's intended
    start against the achieved rate, a panel per percentile, a line per strategy through
    its points in the order of the offered rate. A point whose achieved rate fell short of
    the offered one is drawn hollow: past the knee, the strategy could not keep up."""
    from matplotlib.figure import Figure

    parameter, values, reports = _scan(report)
    for index, point_report in enumerate(reports):
        _results(point_report, f"scan point {index} ({parameter} = {values[index]})")
    if not _numeric(values):
        raise ReportError("a rate scan's values must be numbers")
    paced = [i for i, r in enumerate(reports) if any(x.get("open_loop") for x in r["results"])]
    if not paced:
        raise ReportError("this rate scan has no open-loop point (rate 0 is a closed loop)")
    names: list[str] = []
    for point_report in reports:
        names += [n for n in map(_name, point_report["results"]) if n not in names]
    figure = Figure(
        figsize=(WIDTH, 2.3 * len(RATE_PERCENTILES) + 1.2), dpi=DPI, layout="constrained"
    )
    axes = figure.subplots(len(RATE_PERCENTILES), 1, sharex=True)
    for ax, percentile in zip(axes, RATE_PERCENTILES, strict=True):
        for rank, name in enumerate(names):
            points = []
            for index in sorted(range(len(values)), key=values.__getitem__):
                point_report = reports[index]
                result = next((r for r in point_report["results"] if _name(r) == name), None)
                figures = None if result is None else result.get("open_loop")
                if figures:
                    latency = figures["latency"]["all"][f"{percentile}_us"] / 1e3
                    points.append((figures["achieved_per_sec"], latency, short_of_rate(figures)))
            if not points:
                continue
            colour = f"C{rank % 10}"
            xs, ys = [x for x, _, _ in points], [y for _, y, _ in points]
            ax.plot(xs, ys, color=colour, linestyle=("-", "--", ":")[rank // 10 % 3], label=name)
            for x, y, fell_short in points:
                marker = "osD^v"[rank // 10 % 5]
                face = "white" if fell_short else colour
                ax.plot([x], [y], marker=marker, color=colour, markerfacecolor=face)
        ax.set_yscale("log")
        ax.tick_params(which="both", labelsize=SMALLEST)
        ax.set_ylabel(f"{percentile} ms", fontsize=SMALLEST)
        ax.grid(alpha=0.3, which="both")
        _si_ticks(ax, "x")
    axes[-1].set_xlabel(
        "achieved operations/s (hollow: short of the offered rate)", fontsize=SMALLEST
    )
    figure.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=min(4, max(1, len(names))),
        fontsize=SMALLEST,
    )
    figure.suptitle(
        "countbench: latency from each call's intended start against the achieved rate "
        f"(open loop, {len(paced)} offered rates)\n{_conditions(reports[0], skip=parameter)}",
        fontsize=9,
    )
    return figure


# --- chaos results ------------------------------------------------------------------------

FAULT_COLOURS = {
    "partition": "tab:red",
    "crash": "tab:purple",
    "loss": "tab:orange",
    "duplicate": "tab:olive",
    "latency": "tab:cyan",
}


def _timeline(result: Mapping[str, Any]) -> tuple[float, int, list[float]]:
    """(interval, samples, max_error) of a chaos result's timeline; ReportError if absent."""
    timeline = result.get("timeline")
    if not isinstance(timeline, Mapping):
        raise ReportError("chaos result has no timeline; it cannot be plotted")
    errors = timeline.get("max_error")
    interval = timeline.get("interval")
    if not isinstance(errors, list) or not isinstance(interval, int | float) or interval <= 0:
        raise ReportError("chaos result's timeline lacks 'max_error' or 'interval'")
    samples = timeline.get("samples", len(errors))
    if not isinstance(samples, int) or samples < len(errors):
        raise ReportError(f"chaos result's timeline has {samples!r} samples for {len(errors)}")
    return float(interval), samples, [float(e) for e in errors]


def column_edges(interval: float, samples: int, columns: int) -> list[float]:
    """Virtual-time edges of the timeline's columns.

    Sample ``i`` (0-based) is taken at ``t = (i + 1) * interval`` and stands for the grid
    step ``(i * interval, (i + 1) * interval]``; column ``c`` holds samples
    ``c * samples // columns`` to ``(c + 1) * samples // columns - 1`` (see
    ``Timeline.buckets`` in ``bench/sim/result.py``)."""
    return [(c * samples // columns) * interval for c in range(columns + 1)]


def _id_ranges(ids: Sequence[int]) -> str:
    """Node ids, runs of consecutive ones as ranges: [0, 1, 2, 5] -> '0-2,5'."""
    parts: list[str] = []
    ordered = sorted(ids)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if j == i else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def fault_note(fault: Mapping[str, Any]) -> str:
    """A few characters on what a fault did: '0-1 | 2-4', 'n2', 'p=0.2', '+0.05s'."""
    kind = fault.get("type")
    if kind == "partition" and isinstance(fault.get("sides"), list):
        arrow = " -/> " if fault.get("one_way") else " | "
        return arrow.join(_id_ranges(side) for side in fault["sides"])
    if kind == "crash" and "node" in fault:
        return f"n{fault['node']}" + (" persist" if fault.get("persist") else "")
    if "probability" in fault:
        return f"p={fault['probability']:g}"
    if "latency" in fault:
        return f"+{fault['latency']:g}s"
    return ""


def run_length_series(text: str) -> list[int | None]:
    """A run-length node series (``"0*3,2,n*2"`` -> ``[0, 0, 0, 2, None, None]``: tokens
    ``VALUE`` or ``VALUE*COUNT``, ``n`` for null); ReportError when malformed."""
    out: list[int | None] = []
    for token in text.split(",") if text else []:
        value, star, count = token.partition("*")
        try:
            repeat = int(count) if star else 1
            item = None if value == "n" else int(value)
        except ValueError:
            raise ReportError(f"chaos result's node series has a bad token {token!r}") from None
        if repeat < 1:
            raise ReportError(f"chaos result's node series has a bad token {token!r}")
        out.extend([item] * repeat)
    return out


def _node_series(nodes: Any) -> list[list[int | None]] | None:
    """``timeline.nodes`` as lists (each a run-length string or a list), or None."""
    if not isinstance(nodes, list):
        return None
    out: list[list[int | None]] = []
    for series in nodes:
        if isinstance(series, str):
            out.append(run_length_series(series))
        elif isinstance(series, list):
            out.append(series)
        else:
            return None
    return out


def chaos_figure(result: Mapping[str, Any]) -> Figure:
    """max |count - truth| over live nodes against virtual time, fault windows shaded."""
    from matplotlib.figure import Figure

    interval, samples, errors = _timeline(result)
    if not errors:
        raise ReportError("chaos result's timeline is empty (no sample in the client phase)")
    edges = column_edges(interval, samples, len(errors))
    figure = Figure(figsize=(WIDTH, 5), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    per_column = samples / len(errors)
    what = "max over live nodes" + (
        f" (each step: the max of ~{per_column:.3g} samples)" if per_column > 1 else ""
    )
    nodes = _node_series(result.get("timeline", {}).get("nodes"))
    if nodes is not None and all(len(n) == len(errors) for n in nodes):
        named = len(nodes) <= NODES_IN_LEGEND
        for index, series in enumerate(nodes):
            magnitudes = [math.nan if e is None else abs(float(e)) for e in series]
            if named:
                label: str | None = f"node {index}"
            else:
                label = f"each node's |count - truth| ({len(nodes)} nodes)" if index == 0 else None
            ax.stairs(
                magnitudes,
                edges,
                baseline=None,
                linewidth=0.8,
                alpha=0.7 if named else 0.35,
                label=label,
            )
    ax.stairs(
        errors, edges, baseline=None, color="black", linewidth=1.2, label=f"|count - truth|, {what}"
    )
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    shaded: set[str] = set()
    for fault in result.get("faults") or []:
        window = fault.get("window") if isinstance(fault, Mapping) else None
        if not window:
            continue
        kind = str(fault.get("type", "fault"))
        lo, hi = float(window[0]), float(window[1])
        ax.axvspan(
            lo,
            hi,
            color=FAULT_COLOURS.get(kind, "tab:gray"),
            alpha=0.15,
            zorder=0,
            label=None if kind in shaded else kind,
        )
        shaded.add(kind)
        note = fault_note(fault)
        if note:
            ax.text(
                (lo + hi) / 2, 0.98, note, transform=top, ha="center", va="top", fontsize=SMALLEST
            )
    phases = result.get("phases") or {}
    stop, end = phases.get("stop"), phases.get("end")
    final = result.get("final") or {}
    if isinstance(stop, int | float) and isinstance(end, int | float) and end > stop:
        ax.axvspan(
            stop, end, color="tab:gray", alpha=0.08, zorder=0, label="quiescence (not sampled)"
        )
        if isinstance(final.get("max_abs_error"), int | float):
            ax.plot(
                [end],
                [final["max_abs_error"]],
                marker="D",
                linestyle="none",
                color="tab:blue",
                label="final max |count - truth| at end",
            )
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("|count - truth| (users)")
    ax.set_ylim(bottom=0, top=max(1.0, max(errors), float(final.get("max_abs_error") or 0)) * 1.1)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.tick_params(which="both", labelsize=SMALLEST)
    figure.legend(loc="outside lower center", ncols=2, fontsize=SMALLEST)
    ax.set_title(_chaos_title(result), fontsize=9)
    return figure


def _chaos_title(result: Mapping[str, Any]) -> str:
    scenario = result.get("scenario") or {}
    verdict = result.get("verdict") or {}
    facts = [f"countbench chaos: {result.get('strategy', '?')}"]
    if "seed" in result:
        facts.append(f"seed {result['seed']}")
    if "nodes" in scenario:
        facts.append(f"{scenario['nodes']} nodes")
    if "operations" in scenario:
        facts.append(f"{scenario['operations']} operations")
    head = ", ".join(facts)
    if "passed" in verdict:
        rule = one_line(str(verdict.get("rule", "")), 90)
        return f"{head}\n{'PASS' if verdict['passed'] else 'FAIL'}: {rule}"
    return head


# --- scale curves -------------------------------------------------------------------------

#: Figures drawn in another unit than the one stored (as the tables show them).
SCALE_FACTORS = {"merge_seconds": 1e6}
SCALE_LABELS = {
    "traced_bytes": "traced bytes",
    "rss_bytes": "RSS Δ bytes",
    "state_bytes": "state bytes / replica",
    "sync_bytes": "sync message bytes",
    "merge_seconds": "catch-up merge µs",
    "cluster_bytes": "all replicas' bytes",
    "redis_bytes": "Redis used_memory Δ bytes",
}


def _scale_series(report: Mapping[str, Any]) -> tuple[str, float, list[dict[str, Any]], list[str]]:
    """(param, x shift, points, fitted figures) of a scale curve, or ReportError."""
    param = report.get("param")
    points = report.get("points")
    fits = report.get("fits")
    if not isinstance(param, str) or not isinstance(points, list) or not points:
        raise ReportError("scale result has no 'param' and list of 'points' to plot")
    if not isinstance(fits, Mapping):
        raise ReportError("scale result has no 'fits'")
    for index, point in enumerate(points):
        if not isinstance(point, Mapping) or not isinstance(point.get(param), int | float):
            raise ReportError(f"scale point {index} has no number {param!r}")
    figures = [
        name
        for name in fits
        if all(
            isinstance(p.get(name), int | float) and not isinstance(p.get(name), bool)
            for p in points
        )
    ]
    if not figures:
        raise ReportError("scale result has no fitted figure with a number at every point")
    shift = report.get("fit_x_shift", 0.0)
    return param, float(shift) if isinstance(shift, int | float) else 0.0, points, figures


def growth_label(fit: Mapping[str, Any], factor: float = 1.0) -> str:
    """'fit: linear, a + b·n, b = 34.6, rel. RMS 1.2%' from one figure's fit entry (b in
    the unit drawn: the stored one times ``factor``)."""
    best = fit.get("best")
    if not isinstance(best, str) or best not in GROWTH:
        return "no fit (" + str(fit.get("note", "fewer than 3 points")) + ")"
    model = fit.get("fits", {}).get(best, {})
    shape = GROWTH_SHAPES[best]
    text = f"fit: {best}, {shape}"
    if isinstance(model.get("b"), int | float) and best != "constant":
        text += f", b = {short(float(model['b']) * factor)}"
    if isinstance(model.get("relative_rms"), int | float):
        text += f", rel. RMS {100 * float(model['relative_rms']):.1f}%"
    return text


def scale_figure(report: Mapping[str, Any]) -> Figure:
    """One log-log subplot per fitted figure: the measured points and the best fit."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    param, shift, points, figures = _scale_series(report)
    xs = [float(p[param]) + shift for p in points]
    if max(xs) <= 0:
        raise ReportError(f"scale result's {param} values are all 0 or less: no log axis")
    columns = min(2, len(figures))
    rows = -(-len(figures) // columns)
    figure = Figure(figsize=(WIDTH, 3.4 * rows + 0.6), dpi=DPI, layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for spare in axes[len(figures) :]:
        spare.set_visible(False)
    xlabel = f"{param} + {shift:g}" if shift else param
    for ax, name in zip(axes, figures, strict=False):
        factor = SCALE_FACTORS.get(name, 1.0)
        ys = [float(p[name]) * factor for p in points]
        shown = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
        hidden = len(ys) - len(shown)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if shown:
            ax.plot(*zip(*shown, strict=True), marker="o", linestyle="none", label="measured")
        fit = report["fits"].get(name)
        if isinstance(fit, Mapping):
            best = fit.get("best")
            model = fit.get("fits", {}).get(best) if isinstance(best, str) else None
            if best in GROWTH and isinstance(model, Mapping) and shown:
                dense = np.geomspace(min(x for x, _ in shown), max(xs), 200)
                f = GROWTH[str(best)]
                a, b = float(model["a"]) * factor, float(model["b"]) * factor
                line = [a + b * f(float(x)) for x in dense]
                keep = [(x, y) for x, y in zip(dense, line, strict=True) if y > 0]
                if keep:
                    ax.plot(
                        *zip(*keep, strict=True), linewidth=1.2, label=growth_label(fit, factor)
                    )
            else:
                ax.plot([], [], linestyle="none", label=growth_label(fit, factor))
        title = SCALE_LABELS.get(name, name)
        if hidden:
            title += f"\n({hidden} point(s) at or below 0 not shown)"
        ax.set_title(title, fontsize=9)
        distinct = sorted({x for x, _ in shown})
        ax.set_xticks(distinct, labels=[tick(x) for x in distinct])
        ax.xaxis.set_minor_locator(NullLocator())
        _si_ticks(ax)
        ax.set_xlabel(f"{xlabel} (log)", fontsize=SMALLEST)
        ax.tick_params(which="both", labelsize=SMALLEST)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=SMALLEST)
    for row in grid:
        row[0].set_ylabel("measured (log)", fontsize=SMALLEST)
    strategy = report.get("strategy", "?")
    kind = report.get("strategy_kind")
    figure.suptitle(
        f"countbench scale: {strategy}" + (f" ({kind})" if kind else "") + f", against {param}",
        fontsize=10,
    )
    return figure


# --- writing ------------------------------------------------------------------------------


def _save_atomic(figure: Figure, out: Path, fmt: str, force: bool) -> None:
    """Render into a temporary file beside ``out``, then rename it into place."""
    import matplotlib

    # No date in the SVG and fixed element ids: the same data gives the same file.
    metadata = {"Date": None} if fmt == "svg" else {}

    def write(handle: BinaryIO) -> None:
        with matplotlib.rc_context({"svg.hashsalt": "countbench"}):
            figure.savefig(handle, format=fmt, metadata=metadata)

    write_atomic(out, write, force)
