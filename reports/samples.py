"""A timed figure's independent samples: one per pyperf worker process.

pyperf times a benchmark in one or more worker processes, each giving a few values. The
values of one process share its memory layout, hash seed, caches and the machine's state
of that moment: they are not independent, and the spread between processes is part of
the measurement (Kalibera and Jones, ISMM 2013). So countbench's unit of analysis is the
process: each gives one sample, its ops/s (1 / the mean of its values), and

* a figure is the **mean** of its processes' ops/s (the mean, not the median: a
  process's figure depends on its hash seed and memory layout, and on this machine
  their ops/s are often bimodal, where a median of a few jumps from one mode to the
  other between runs);
* its ``ci95`` is Student's 95 % confidence interval of that mean;
* its ``rerun`` margin is the ± printed in tables: the half-width of a 95 % prediction
  interval for the mean of a second run of as many processes,
  ``t(0.975, n-1) * s * sqrt(2 / n)``. It says where a second run of the same code on
  the same machine should land, if the machine stays as it was.

Both need at least :data:`MIN_PROCESSES` processes; with fewer, :class:`Estimate` says
there are not enough independent samples instead of printing a confident ±.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Fewest worker processes a ± or a significance is computed from.
MIN_PROCESSES = 4

#: Student's t, two-sided 95 %, by degrees of freedom.
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def t95(df: int) -> float:
    """Student's two-sided 95 % quantile for ``df`` degrees of freedom (tabled; between
    table rows, and from 120 towards the normal's 1.96 at infinity, linear in 1/df, which
    is close)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df in _T95:
        return _T95[df]
    rows = sorted(_T95)
    below = max(r for r in rows if r < df)
    above = next((r for r in rows if r > df), None)
    low_x, high_x = 1 / below, (1 / above if above else 0.0)
    high_t = _T95[above] if above else 1.960
    share = (low_x - 1 / df) / (low_x - high_x)
    return _T95[below] + (high_t - _T95[below]) * share


def process_values(operation: Mapping[str, Any]) -> list[list[float]]:
    """The values (seconds per operation) of each worker process that timed
    ``operation`` (one timed stream of a report), from the pyperf run it keeps; a
    calibration run (no values) is skipped. A report without pyperf runs gives its
    values as one process."""
    suite = operation.get("pyperf") or {}
    benchmarks = suite.get("benchmarks") or []
    runs = benchmarks[0].get("runs", []) if benchmarks else []
    found = [
        [_number(v) for v in run["values"]]
        for run in runs
        if isinstance(run, Mapping) and isinstance(run.get("values"), list) and run["values"]
    ]
    if found:
        return found
    values = [_number(v) for v in operation.get("values", [])]
    return [values] if values else []


def _number(value: Any) -> float:
    """A value as a float; NaN for anything that is not a number (a damaged report)."""
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


def rates(processes: Sequence[Sequence[float]]) -> list[float]:
    """Each process's ops/s: 1 / the mean of its seconds per operation; NaN for a process
    with a value that is no positive finite number (a damaged report)."""
    out = []
    for values in processes:
        if not values or not all(math.isfinite(v) and v > 0 for v in values):
            out.append(math.nan)
            continue
        mean = math.fsum(v / len(values) for v in values)  # no overflow on huge values
        out.append(1.0 / mean)
    return out


@dataclass(frozen=True)
class Estimate:
    """One timed figure from its processes' ops/s."""

    ops_per_sec: float  # the mean over processes
    process_ops_per_sec: tuple[float, ...]
    ci95: tuple[float, float] | None  # None: fewer than MIN_PROCESSES processes
    rerun: float | None  # the ± ; None as ci95

    @property
    def processes(self) -> int:
        return len(self.process_ops_per_sec)

    @property
    def enough(self) -> bool:
        return self.rerun is not None

    @property
    def stdev(self) -> float:
        """The standard deviation between processes (0 with one)."""
        samples = self.process_ops_per_sec
        if len(samples) < 2 or not all(math.isfinite(x) for x in samples):
            return 0.0
        return statistics.stdev(samples)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops_per_sec": self.ops_per_sec,
            "ops_per_sec_stdev": self.stdev,
            "processes": self.processes,
            "process_ops_per_sec": list(self.process_ops_per_sec),
            "ci95": list(self.ci95) if self.ci95 else None,
            "rerun": self.rerun,
        }


def from_rates(samples: Sequence[float]) -> Estimate:
    """The estimate from each process's ops/s (NaN when one of them is not a number)."""
    if not samples:
        return Estimate(0.0, (), None, None)
    n = len(samples)
    if not all(math.isfinite(x) for x in samples):
        return Estimate(math.nan, tuple(samples), None, None)
    mean = math.fsum(x / n for x in samples)
    if n < MIN_PROCESSES:
        return Estimate(mean, tuple(samples), None, None)
    t, sd = t95(n - 1), statistics.stdev(samples)
    half = t * sd / math.sqrt(n)
    return Estimate(mean, tuple(samples), (mean - half, mean + half), t * sd * math.sqrt(2 / n))


def estimate(operation: Mapping[str, Any]) -> Estimate:
    """The figure of one timed stream of a report (see the module's docstring)."""
    return from_rates(rates(process_values(operation)))


def not_enough(processes: int) -> str:
    """What a figure with too few processes says instead of a ±."""
    return (
        f"not enough independent samples to judge: {processes} worker process"
        f"{'es' if processes != 1 else ''}, at least {MIN_PROCESSES} are needed "
        "(--preset ci, or --processes)"
    )


def rate_text(operation: Mapping[str, Any]) -> str:
    """'7,916,888 ± 116,700' (mean ops/s ± the rerun margin), or '7,916,888' alone when
    the figure has too few processes for a ±."""
    figure = estimate(operation)
    if figure.rerun is None:
        return f"{figure.ops_per_sec:,.0f}"
    return f"{figure.ops_per_sec:,.0f} ± {figure.rerun:,.0f}"


def spread_note(report: Mapping[str, Any]) -> str:
    """One line saying what the ± of a report's figures means, or why there is none."""
    counts = sorted(
        {
            estimate(operation).processes
            for result in report["results"]
            for operation in result["operations"].values()
        }
    )
    fewest = counts[0] if counts else 0
    if fewest >= MIN_PROCESSES:
        return (
            f"ops/s: mean of {fewest}+ worker processes ± where a rerun on this machine "
            "should land (95%)"
        )
    return (
        f"ops/s: mean of {fewest} worker process{'es' if fewest != 1 else ''}, no ±: "
        f"{not_enough(fewest).split(': ', 1)[1]}"
    )
