"""``countbench scale``: how a strategy's memory and replication cost grow.

``scale --strategy session --param users=10000,100000,1000000`` measures memory per
online user at each user count (:func:`~countbench.bench.memory.measure_memory`);
``scale --strategy pncounter --param nodes=3,10,100,1000`` measures a replicated
strategy's state bytes, sync bytes per tick and catch-up time (a fresh replica taking in
the state) at each number of replicas (:func:`~countbench.bench.memory.measure_nodes`);
``scale --strategy compact --param retired=0,10,100,1000`` measures a replicated
strategy's state and sync bytes after that many replicas left and as many new ones joined
(churn, :func:`~countbench.bench.memory.measure_churn`): compact folds the retired
replicas' entries away, pncounter keeps one per replica that ever wrote. Every point runs
in a fresh process. The table ends with the growth that fits each figure best
(:func:`fit_growth`).
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..reports.json_report import check_output_path, write_json_atomic
from ..reports.numbers import GROWTH
from .memory import (
    DEFAULT_NODES,
    MAX_RETIRED,
    USERS_PER_NODE,
    ScaleUsageError,
    measurable,
    measure_churn,
    measure_memory,
    measure_nodes,
    strategy_class,
)
from .workload import MAX_NODES, MAX_USERS

__all__ = ["MODELS", "ScaleUsageError", "fit_growth", "parse_param", "scale", "scale_curve"]

#: Growth models, simplest first: y = a + b * f(n) (the plots draw the same ones).
MODELS = GROWTH
#: Values that all lie within this share of their largest one are called constant.
CONSTANT_SPREAD = 0.05
#: A growing model whose relative RMS error is within this is good enough (simplest wins).
FIT_TOLERANCE = 0.10

out = Console()


def parse_param(param: str) -> tuple[str, list[int]]:
    """``"users=10,100"`` -> ``("users", [10, 100])``; :class:`ScaleUsageError` otherwise.
    ``retired`` (replicas replaced) may be 0; users and nodes start at 1."""
    key, sep, values = param.partition("=")
    key = key.strip()
    if not sep or key not in ("users", "nodes", "retired"):
        raise ScaleUsageError(
            f"param must be users=N,N,..., nodes=N,N,... or retired=N,N,..., not {param!r}"
        )
    top = {"users": MAX_USERS, "nodes": MAX_NODES, "retired": MAX_RETIRED}[key]
    low = 0 if key == "retired" else 1
    points: list[int] = []
    for part in values.split(","):
        text = part.strip()
        try:
            number = int(text)
        except ValueError:
            raise ScaleUsageError(f"{key}: {text!r} is not a whole number") from None
        if not low <= number <= top:
            raise ScaleUsageError(f"{key}: {number} is out of range [{low}, {top:,}]")
        if number in points:
            raise ScaleUsageError(f"{key}: {number} is given twice")
        points.append(number)
    return key, sorted(points)


def fit_growth(xs: Sequence[float], ys: Sequence[float]) -> dict[str, Any]:
    """Which of :data:`MODELS` grows like ``ys`` over ``xs`` (needs 3 points).

    Each model is fitted as ``y = a + b * f(n)`` by least squares on relative errors
    (weights ``1 / y**2``, so the smallest point counts as much as the largest); a fit with
    ``b <= 0`` (not growing) is discarded. The values are ``constant`` when they all lie
    within :data:`CONSTANT_SPREAD` of the largest. Otherwise the best is the *simplest*
    model (``constant`` included) whose relative RMS error is within
    :data:`FIT_TOLERANCE`, else the one with the smallest error: every model here
    contains the simpler ones' shapes only approximately, and real memory curves step (a
    hash table doubles), so the smallest residual alone would call a linear curve with one
    doubling "n log n".
    """
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    result: dict[str, Any] = {"best": None, "fits": {}}
    if len(xs) < 3:
        result["note"] = "a fit needs at least 3 points"
        return result
    scale = max(abs(y) for y in ys) or 1.0
    weights = [1.0 / max(abs(y), 0.01 * scale) ** 2 for y in ys]
    total = sum(weights)
    my = sum(w * y for w, y in zip(weights, ys, strict=True)) / total
    for name, f in MODELS.items():
        fx = [f(float(x)) for x in xs]
        mx = sum(w * v for w, v in zip(weights, fx, strict=True)) / total
        sxx = sum(w * (v - mx) ** 2 for w, v in zip(weights, fx, strict=True))
        if name != "constant" and sxx == 0:
            continue
        b = 0.0
        if name != "constant":
            b = sum(w * (v - mx) * (y - my) for w, v, y in zip(weights, fx, ys, strict=True))
            b /= sxx
        a = my - b * mx
        residual = sum(w * (y - a - b * v) ** 2 for w, v, y in zip(weights, fx, ys, strict=True))
        rms = math.sqrt(residual / len(ys))
        result["fits"][name] = {"a": a, "b": b, "relative_rms": rms}
    if max(ys) - min(ys) <= CONSTANT_SPREAD * scale:
        result["best"] = "constant"
        return result
    if result["fits"]["constant"]["relative_rms"] <= FIT_TOLERANCE:
        result["best"] = "constant"  # the simplest model, and good enough
        return result
    growing = {n: fit for n, fit in result["fits"].items() if n != "constant" and fit["b"] > 0}
    if not growing:
        result["best"] = "constant"
        result["note"] = "no growing model fits (the values do not grow)"
        return result
    close = [n for n, fit in growing.items() if fit["relative_rms"] <= FIT_TOLERANCE]
    result["best"] = close[0] if close else min(growing, key=lambda n: growing[n]["relative_rms"])
    return result


# Figures of each curve that get a column and a fit: (key, header, format).
USER_FIGURES = (
    ("traced_bytes", "traced bytes", "{:,.0f}"),
    ("traced_bytes_per_user", "traced B/user", "{:,.1f}"),
    ("rss_bytes", "RSS Δ bytes", "{:,.0f}"),
    ("rss_bytes_per_user", "RSS B/user", "{:,.1f}"),
)
REPLICATED_USER_FIGURES = (
    ("state_bytes", "state bytes/replica", "{:,.0f}"),
    ("sync_bytes", "sync msg bytes", "{:,.0f}"),
)
REDIS_FIGURES = (
    ("redis_bytes", "Redis used_memory Δ", "{:,.0f}"),
    ("redis_bytes_per_user", "Redis B/user", "{:,.1f}"),
)
NODE_FIGURES = (
    ("state_bytes", "state bytes/replica", "{:,.0f}"),
    ("sync_bytes", "sync msg bytes", "{:,.0f}"),
    ("merge_seconds", "catch-up µs", "µs"),
    ("cluster_bytes", "all replicas bytes", "{:,.0f}"),
)
CHURN_FIGURES = (
    ("state_bytes", "state bytes/replica", "{:,.0f}"),
    ("sync_bytes", "sync msg bytes", "{:,.0f}"),
    ("count", "count", "{:,}"),
    ("expected", "logins - logouts", "{:,}"),
)
#: The figure of each curve whose growth is fitted.
FITTED = {
    "users": ("traced_bytes", "rss_bytes", "state_bytes", "sync_bytes", "redis_bytes"),
    "nodes": ("state_bytes", "sync_bytes", "merge_seconds", "cluster_bytes"),
    "retired": ("state_bytes", "sync_bytes"),
}


def scale_curve(
    strategy: str,
    param: str,
    nodes: int = DEFAULT_NODES,
    users_per_node: int = USERS_PER_NODE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every point of ``param`` (one subprocess each) and fit each figure."""
    key, points = parse_param(param)
    cls = strategy_class(strategy)
    kind = measurable(cls)
    if key in ("nodes", "retired") and kind != "replicated":
        raise ScaleUsageError(f"{key}=... needs a replicated strategy; {cls.name!r} is {kind}")
    results: list[dict[str, Any]] = []
    for point in points:
        if progress is not None:
            progress(f"{cls.name}: {key}={point:,}")
        if key == "users":
            results.append(measure_memory(cls.name, point, nodes))
        elif key == "retired":
            results.append(measure_churn(cls.name, point, nodes, users_per_node))
        else:
            results.append(measure_nodes(cls.name, point, users_per_node))
    # A fit over x = retired replicas uses x + 1 (log n needs n > 0; retired=0 is allowed).
    shift = 1.0 if key == "retired" else 0.0
    fits = {
        figure: fit_growth([float(p) + shift for p in points], [float(r[figure]) for r in results])
        for figure in FITTED[key]
        if results and figure in results[0]
    }
    return {
        "kind": "countbench-scale",
        "schema_version": 1,
        "strategy": cls.name,
        "strategy_kind": kind,
        "param": key,
        "fit_x_shift": shift,  # the fits are over x = param + fit_x_shift
        "points": results,
        "fits": fits,
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
        },
    }


def _figures(report: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    if report["param"] == "nodes":
        return NODE_FIGURES
    if report["param"] == "retired":
        return CHURN_FIGURES
    if report["strategy_kind"] == "redis":
        return REDIS_FIGURES
    if report["strategy_kind"] == "replicated":
        return USER_FIGURES + REPLICATED_USER_FIGURES
    return USER_FIGURES


def _cell(value: float | None, fmt: str) -> str:
    if value is None:  # e.g. the count of replicas that do not agree
        return "-"
    if fmt == "µs":
        return f"{value * 1e6:,.1f}"
    return fmt.format(value)


def render(report: dict[str, Any]) -> Table:
    key = report["param"]
    figures = _figures(report)
    table = Table(title=f"scale: {report['strategy']} ({report['strategy_kind']}), {key}")
    table.add_column(key, justify="right")
    for _, header, _ in figures:
        table.add_column(header, justify="right")
    for point in report["points"]:
        cells = [f"{point[key]:,}"]
        cells += [_cell(point[figure], fmt) for figure, _, fmt in figures]
        table.add_row(*cells)
    table.add_section()
    growth = ["growth"]
    for figure, _, _ in figures:
        fit = report["fits"].get(figure)
        growth.append(fit["best"] or "-" if fit else "")
    table.add_row(*growth, style="bold")
    return table


def scale(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="Strategy to measure.")],
    param: Annotated[
        str,
        typer.Option(
            "--param",
            help="users=N,N,... (memory per online user), nodes=N,N,... (replicated: "
            "state, sync message and merge cost per number of replicas) or "
            "retired=N,N,... (replicated: state and sync bytes after N replicas were "
            "replaced by new ones; compact folds them away).",
        ),
    ] = "users=10000,100000,1000000",
    nodes: Annotated[
        int,
        typer.Option(
            "--nodes", help="Replicas of a replicated strategy (users=...; retired=: live ones)."
        ),
    ] = DEFAULT_NODES,
    users_per_node: Annotated[
        int,
        typer.Option(
            "--users-per-node", help="Logins each replica accepts (nodes=..., retired=...)."
        ),
    ] = USERS_PER_NODE,
    json: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing report file.")
    ] = False,
) -> None:
    """How memory per user, or state and sync cost per replica, grow with scale.

    Each point is measured in a fresh process; the growth that fits best (constant, log n,
    linear, n log n, quadratic) is named.
    """
    if not 1 <= nodes <= MAX_NODES:
        raise ScaleUsageError(f"--nodes must be in [1, {MAX_NODES:,}], not {nodes}")
    if not 1 <= users_per_node <= MAX_USERS:
        raise ScaleUsageError(f"--users-per-node must be in [1, {MAX_USERS:,}]")
    if json is not None:
        check_output_path(json, force)
    err = Console(stderr=True)
    with err.status("measuring") as status:
        report = scale_curve(
            strategy, param, nodes, users_per_node, lambda m: status.update(f"measuring {m}")
        )
    out.print(render(report))
    if json is not None:
        write_json_atomic(json, report, force)
        out.print(f"written: {json}", markup=False, highlight=False)


if __name__ == "__main__":  # pragma: no cover - ``python -m countbench.bench.scale_cli``
    typer.run(scale)
    sys.exit(0)
