"""The saved runs of one baseline side by side: each (strategy, operation)'s ops/s, run by
run, oldest first, and its change from the first run it was in to the last.

A figure is what ``diff`` compares (the median of the worker processes' ops/s, see
:mod:`.samples`). A trend judges nothing: it shows where a slow drift began, which a diff of
two runs cannot; ``diff`` is the gate. A run whose workload or mode differs from the run
before it is named in :attr:`Trend.notes`, since its figures measure something else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .diff import workload_change
from .load import named_results
from .numbers import short
from .samples import estimate

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class SavedRun:
    """One saved run: its id (which starts with its UTC time) and its commit."""

    run_id: str
    created: str
    commit: str  # 12 hex digits, "-dirty" when the tree had changes; "?" when unknown

    @property
    def label(self) -> str:
        """'2026-12-05 08:17 38e843d' ('*' after the commit: the tree had changes)."""
        return f"{self.created[:10]} {self.created[11:16]} {self.commit[:7]}{self.dirty}"

    @property
    def dirty(self) -> str:
        """'*' when the tree had changes, else ''."""
        return "*" if self.commit.endswith("-dirty") else ""


@dataclass(frozen=True)
class Series:
    """One benchmark's ops/s in each run (None where the run did not time it)."""

    benchmark: str  # "strategy operation"
    ops_per_sec: tuple[float | None, ...]

    @property
    def change_pct(self) -> float | None:
        """From the first run that timed it to the last, in percent; None with fewer
        than two."""
        timed = [v for v in self.ops_per_sec if v is not None and v > 0]
        if len(timed) < 2:
            return None
        return (timed[-1] - timed[0]) / timed[0] * 100


@dataclass(frozen=True)
class Trend:
    name: str
    runs: tuple[SavedRun, ...]
    series: tuple[Series, ...]
    notes: tuple[str, ...]


def saved_run(report: Mapping[str, Any]) -> SavedRun:
    git = report.get("git") or {}
    commit = str(git.get("commit") or "?")[:12] + ("-dirty" if git.get("dirty") else "")
    return SavedRun(str(report["run_id"]), str(report["created"]), commit)


def trend(name: str, reports: Sequence[Mapping[str, Any]]) -> Trend:
    """The trend of ``reports`` (valid reports, oldest first), saved as ``name``."""
    runs = tuple(saved_run(r) for r in reports)
    figures: dict[str, list[float | None]] = {}
    for index, report in enumerate(reports):
        for strategy, result in named_results(report).items():
            for operation, timing in result["operations"].items():
                value = estimate(timing).ops_per_sec
                row = figures.setdefault(f"{strategy} {operation}", [None] * len(reports))
                row[index] = value if math.isfinite(value) else None
    notes = [
        f"run {runs[i].label} ({runs[i].run_id}): {changed}; its figures measure another load"
        for i in range(1, len(reports))
        if (changed := workload_change(reports[i - 1], reports[i]))
    ]
    series = tuple(Series(b, tuple(v)) for b, v in figures.items())
    return Trend(name, runs, series, tuple(notes))


def _cells(entry: Series) -> list[str]:
    change = entry.change_pct
    shown = [short(v) if v is not None else "-" for v in entry.ops_per_sec]
    return [entry.benchmark, *shown, "-" if change is None else f"{change:+.1f}%"]


def title(result: Trend) -> str:
    return (
        f"countbench trend of {result.name} · ops/s (median of processes) in "
        f"{len(result.runs)} saved runs, oldest first · change: first to last"
    )


def table(result: Trend) -> Table:
    from rich import box
    from rich.table import Table

    shown = Table(title=title(result), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    shown.add_column("Benchmark", no_wrap=True)
    for run in result.runs:  # three short lines: commit, day, time ('*': the tree had changes)
        header = f"{run.commit[:7]}\n{run.created[5:10]}\n{run.created[11:16]}{run.dirty}"
        shown.add_column(header, justify="right", no_wrap=True)
    shown.add_column("change", justify="right", no_wrap=True)
    for entry in result.series:
        shown.add_row(*_cells(entry))
    return shown


def to_markdown(result: Trend) -> str:
    lines = [f"**{title(result)}**", ""]
    lines.append("| Benchmark | " + " | ".join(r.label for r in result.runs) + " | change |")
    lines.append("|---|" + "---:|" * (len(result.runs) + 1))
    for entry in result.series:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(entry)) + " |")
    lines += ["", *(f"- {note}" for note in result.notes)]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_dict(result: Trend) -> dict[str, Any]:
    return {
        "kind": "countbench-trend",
        "version": 1,
        "name": result.name,
        "runs": [asdict(run) for run in result.runs],
        "series": [{**asdict(s), "change_pct": s.change_pct} for s in result.series],
        "notes": list(result.notes),
    }
