"""How a :class:`~countbench.reports.diff.DiffResult` is shown: a terminal table with its
messages, Markdown for a pull request, or JSON for a machine. All three say the same
things: one row per (strategy, operation), the consistency changes, strategies in one
report only, notes, warnings, and one verdict line."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .numbers import p_text, short

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .diff import DiffResult, PairDiff

#: Verdict kinds: the style each is shown in on a terminal.
STYLES = {"failed": "bold red", "unjudged": "bold yellow", "ok": "", "warning": "yellow"}


def title(result: DiffResult) -> str:
    return (
        f"countbench diff · ops/s (median of processes) · fail above a "
        f"{result.fail_above:.1%} slowdown with p < {result.alpha} (Mann-Whitney U on processes)"
    )


def judgement(pair: PairDiff, result: DiffResult) -> str:
    """'REGRESSION', 'no', or 'not judged' (too few processes, or different workloads)."""
    if result.unjudged or pair.p_value is None:
        return "not judged"
    return "REGRESSION" if pair.regression else "no"


def rows(result: DiffResult) -> list[list[str]]:
    """Benchmark, base, new, change, procs, p, significant, regression: one per pair."""
    return [
        [
            f"{pair.strategy} {pair.operation}",
            short(pair.base_ops_per_sec),
            short(pair.new_ops_per_sec),
            f"{pair.change_pct:+.1f}%",
            f"{pair.n_base}/{pair.n_new}",
            p_text(pair.p_value),
            "yes" if pair.significant else "no",
            judgement(pair, result),
        ]
        for pair in result.pairs
    ]


HEADERS = ("Benchmark", "base", "new", "change", "procs", "p", "sig.", "regression")


def messages(result: DiffResult) -> list[tuple[str, str]]:
    """(line, kind) for everything under the table, the verdict last."""
    said: list[tuple[str, str]] = []
    for change in result.consistency:
        label = "consistency regression" if change.failure else "consistency changed"
        said.append((f"{label}: {change.describe()}", "failed" if change.failure else "ok"))
    if result.only_in_base:
        said.append((f"only in the base report: {', '.join(result.only_in_base)}", "ok"))
    if result.only_in_new:
        said.append((f"only in the new report: {', '.join(result.only_in_new)}", "ok"))
    notes = sorted({p.note for p in result.pairs if p.note})
    said += [(f"note: {note}", "ok") for note in [*result.notes, *notes]]
    said += [(f"warning: {warning}", "warning") for warning in result.warnings]
    return [*said, verdict(result)]


def verdict(result: DiffResult) -> tuple[str, str]:
    """The one verdict line and its kind (failed, unjudged, ok)."""
    if result.failed:
        what = [f"{p.strategy} {p.operation} {p.change_pct:+.1f}%" for p in result.regressions]
        what += [c.strategy + " consistency" for c in result.consistency_failures]
        return f"FAILED: {', '.join(what)}", "failed"
    if result.unjudged and not result.pairs:  # nothing to judge: no option would help
        return f"NOT JUDGED: {result.unjudged}", "unjudged"
    if result.unjudged:
        return (
            f"NOT JUDGED: {result.unjudged}; measure both on one workload, or pass "
            "--allow-workload-change",
            "unjudged",
        )
    if result.untested:
        return (
            "NOT JUDGED: not enough independent samples to judge any operation's speed; "
            "make both reports with --preset ci (or --processes 4 or more)",
            "unjudged",
        )
    return f"ok: no significant slowdown above {result.fail_above:.1%}, no consistency loss", "ok"


def table(result: DiffResult) -> Table:
    """One row per (strategy, operation) in both reports; fits 80 columns."""
    from rich.table import Table
    from rich.text import Text

    shown = Table(title=title(result), title_justify="left")
    shown.add_column(HEADERS[0])
    for column in HEADERS[1:6]:
        shown.add_column(column, justify="right", no_wrap=True)
    shown.add_column(HEADERS[6])
    shown.add_column(HEADERS[7], no_wrap=True)
    for pair, row in zip(result.pairs, rows(result), strict=True):
        change = "red" if pair.change_pct < 0 else "green"
        judged = {"REGRESSION": "bold red", "not judged": "dim"}.get(row[7], "")
        shown.add_row(
            *row[:3],
            Text(row[3], style=change if pair.significant else ""),
            *row[4:7],
            Text(row[7], style=judged),
        )
    return shown


def print_diff(result: DiffResult, console: Console) -> None:
    """The table, then the messages, on a terminal."""
    from rich.text import Text

    if result.pairs:
        console.print(table(result))
    for line, kind in messages(result):
        console.print(Text(line, style=STYLES[kind]), soft_wrap=True)


def to_markdown(result: DiffResult) -> str:
    """The same as a Markdown table and a list: a pull-request comment."""
    lines = [f"**{title(result)}**", ""]
    if result.pairs:
        lines.append("| " + " | ".join(HEADERS) + " |")
        lines.append("|---|" + "---:|" * 5 + "---|---|")
        for row in rows(result):
            cells = [*row[:7], f"**{row[7]}**" if row[7] == "REGRESSION" else row[7]]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    said = messages(result)
    lines += [f"- {line}" for line, _ in said[:-1]]
    line, kind = said[-1]
    lines += ["", f"**{line}**" if kind != "ok" else line]
    return "\n".join(lines) + "\n"


def to_dict(result: DiffResult) -> dict[str, Any]:
    """Everything, as JSON-able data, with ``kind`` countbench-diff and the verdict."""
    line, kind = verdict(result)
    return {
        "kind": "countbench-diff",
        "version": 1,
        "fail_above": result.fail_above,
        "alpha": result.alpha,
        "verdict": {"status": kind, "line": line, "failed": result.failed},
        "pairs": [{**asdict(pair), "judgement": judgement(pair, result)} for pair in result.pairs],
        "consistency": [
            {**asdict(change), "description": change.describe()} for change in result.consistency
        ],
        "only_in_base": result.only_in_base,
        "only_in_new": result.only_in_new,
        "notes": result.notes,
        "warnings": result.warnings,
        "unjudged": result.unjudged,
    }
