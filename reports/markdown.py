"""A report as a Markdown table, for a pull-request comment or a CI job summary.

:func:`to_markdown` renders the comparison of ``countbench compare`` (one row per strategy:
reads/s, writes/s and mixed/s as the median of the worker processes and where a rerun
should land (see :mod:`.samples`), whether the counts were correct against the strategy's
specification (and on the simulator and under real faults, where run), the final count's
error against the users online, and the measured complexity) under one header line naming
the mode,
workers, nodes, users, preset and date of the run, and over one note line (pyperf's
stability warnings, or that a smoke report has no spread). GitHub-flavoured Markdown;
text from the report is escaped, so a strategy name cannot break the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .load import scan_points
from .numbers import duration, short
from .samples import rate_text, spread_note
from .table import mix_text, shaping, unstable
from .verdicts import (
    online_error,
    real_fault_status,
    short_of_rate,
    simulated_status,
    verification_status,
)

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def escape(text: str) -> str:
    """``text`` with Markdown's special characters backslash-escaped and newlines as spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def spec_cell(result: Mapping[str, Any]) -> str:
    """'eventual · balance ✓ · simulated ✓': the claim, the specification, and whether the
    counts were correct against it (verification pass; simulator; real faults)."""
    check = result["verification"]
    text = (
        f"{escape(result['strategy']['consistency_claim'])} · "
        f"{escape(str(check.get('specification', '?')))} {verification_status(result)}"
    )
    simulated = simulated_status(result)
    if simulated:
        text += f" · simulated {simulated}"
    real = real_fault_status(result)
    if real:
        text += f" · real faults {real}"
    return text


def error_cell(result: Mapping[str, Any]) -> str:
    """'+845 of 498': the worst node's error against the users online, and their number."""
    check = result["verification"]
    text = f"{online_error(result):+,} of {check['truth']:,}"
    if not check["nodes_agree"]:
        text += " (nodes disagree)"
    sim = result.get("simulation")
    if sim:
        text += f" · simulated final {max(sim['final']['errors'], key=abs, default=0):+,}"
    return text


def complexity_cell(result: Mapping[str, Any]) -> str:
    c = result["complexity"]
    return f"{c['lines']:,} lines · cc {c['cyclomatic']:,} (max {c['max_function']:,})"


def header(report: Mapping[str, Any]) -> str:
    """One line: what was run, with which settings, when, on what."""
    spec = report["workload"]
    parts = [
        f"**countbench {escape(report['tool']['version'])}**",
        f"{escape(report['mode'])} mode",
        f"{spec['workers']} workers",
        f"{spec['nodes']} nodes",
        f"{spec['users']:,} users",
        f"preset {escape(report['preset'])}",
        *(escape(part) for part in shaping(spec)),
        escape(report["created"]),
        f"{escape(report['python']['implementation'])} {escape(report['python']['version'])}",
    ]
    cpu = report["machine"].get("cpu_model")
    if cpu:
        parts.append(escape(str(cpu)))
    git = report.get("git")
    if git:
        parts.append(f"commit {escape(git['commit'][:10])}" + (" (dirty)" if git["dirty"] else ""))
    return " · ".join(parts)


def note(report: Mapping[str, Any]) -> str:
    """pyperf's stability verdict, as the terminal table's caption says it."""
    if report["preset"] == "smoke":
        return "_smoke preset: one value per benchmark, so no spread and no stability check_"
    warned = unstable(report)
    if warned:
        return f"_pyperf found these unstable: {escape(', '.join(warned))}_"
    return "_pyperf raised no stability warning_"


def to_markdown(report: Mapping[str, Any]) -> str:
    """``report`` (a valid report) as Markdown: header line, blank line, table, blank line,
    note line; ends with a newline. A ``--param`` scan gives one such block per point,
    each under a heading naming the parameter's value."""
    points = scan_points(report)
    if not points[0][0]:
        return _block(report)
    return "\n".join(
        f"### {escape(parameter)} = {escape(str(value))}\n\n" + _block(point)
        for parameter, value, point in points
    )


def _block(report: Mapping[str, Any]) -> str:
    lines = [
        header(report),
        "",
        f"| Strategy | Reads/s | Writes/s | Mixed/s ({escape(mix_text(report))}) | Correct (spec) "
        "| Error vs online | Complexity |",
        "| --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for result in report["results"]:
        operations = result["operations"]
        cells = [
            escape(result["strategy"]["name"]),
            rate_text(operations["reads"]),
            rate_text(operations["writes"]),
            rate_text(operations["mixed"]),
            spec_cell(result),
            error_cell(result),
            complexity_cell(result),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"_{escape(spread_note(report))}_", "", note(report)]
    lines += _open_loop_lines(report) + _scenario_lines(report)
    return "\n".join(lines) + "\n"


def _open_loop_lines(report: Mapping[str, Any]) -> list[str]:
    """An open-loop run's figures (as the terminal's table under the comparison)."""
    rows = [r for r in report["results"] if r.get("open_loop")]
    if not rows:
        return []
    first = rows[0]["open_loop"]
    lines = [
        "",
        f"Open loop: {short(first['offered_per_sec'])} operations/s offered "
        f"({escape(first['arrivals'])} arrivals); latency from each call's intended start.",
        "",
        "| Strategy | Achieved/s | p50 | p99 | p99.9 | Service p99.9 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in rows:
        figures = result["open_loop"]
        latency = figures["latency"]["all"]
        achieved = short(figures["achieved_per_sec"]) + (" short" if short_of_rate(figures) else "")
        cells = [
            escape(result["strategy"]["name"]),
            achieved,
            *(duration(latency[key]) for key in ("p50_us", "p99_us", "p99.9_us")),
            duration(figures["service"]["all"]["p99.9_us"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _scenario_lines(report: Mapping[str, Any]) -> list[str]:
    """A shaped scenario's error during the pass (as the terminal's table)."""
    rows = [r for r in report["results"] if r.get("scenario")]
    if not rows:
        return []
    lines = [
        "",
        f"Scenario {escape(rows[0]['scenario']['name'])}: how far a read's count is from the "
        "users online as far as every worker had got while it ran, in each shape's window "
        "and outside (max and mean of |error|, net: signed mean).",
        "",
        "| Strategy | Window | In: max | mean | net | Out: max | mean | net |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in rows:
        out = result["scenario"]["outside"]
        for window in result["scenario"]["windows"]:
            span = f"{escape(window['shape'])} {window['from']:,.0f}-{window['to']:,.0f} s"
            cells = [escape(result["strategy"]["name"]), span, *_errors(window), *_errors(out)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _errors(figures: Mapping[str, Any]) -> list[str]:
    if not figures["reads"]:
        return ["-", "-", "-"]
    return [
        f"{figures['error_max']:,}",
        f"{figures['error_mean']:,.1f}",
        f"{figures['error_net_mean']:+,.1f}",
    ]
