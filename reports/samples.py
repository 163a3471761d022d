"""A timed figure's independent samples: one per pyperf worker process.

pyperf times a benchmark in one or more worker processes, each giving a few values. The
values of one process share its memory layout, hash seed, caches and the machine's state
of that moment: they are not independent, and the spread between processes is part of
the measurement (Kalibera and Jones, ISMM 2013). So countbench's unit of analysis is the
process: each gives one sample, its ops/s (1 / the mean of its values), and

* a figure is the **median** of its processes' ops/s;
* its ``rerun`` interval is where the median of a second run of as many processes should
  land, at least 95 % of the time if the machine stays as it was: the order statistics
  ``[x(k), x(n+1-k)]`` of this run with the largest ``k`` that gives 95 %
  (:func:`rerun_coverage`). It assumes only that processes are exchangeable, nothing of
  their distribution: on this machine the processes of one benchmark are heavy-tailed
  (now and then one is 10-20 % slower, hit by a stall), and a mean ± t * s, which the
  spread of a run without such a process makes narrow, covered a rerun 15 and 16 times in
  20 (``countbench gate-check``); this interval needs :data:`RERUN_PROCESSES` processes;
* its ``ci95`` is the order-statistic 95 % confidence interval of the median (binomial),
  from 6 processes.

With too few processes :class:`Estimate` says there are not enough independent samples
instead of printing a confident interval; ``diff`` tests from :data:`MIN_PROCESSES`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Fewest worker processes a significance is computed from (see reports/diff.py).
MIN_PROCESSES = 4
CONFIDENCE = 0.95

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


def _count_below(k: int, n: int, m: int, i: int) -> float:
    """P(exactly ``i`` of ``m`` new values fall below the ``k``-th smallest of ``n`` old
    ones), all ``n + m`` exchangeable and without ties (a negative hypergeometric)."""
    return math.comb(i + k - 1, i) * math.comb(m - i + n - k, m - i) / math.comb(n + m, n)


def rerun_coverage(n: int, k: int) -> float:
    """The least probability that the median of a rerun of ``n`` processes lies in
    ``[x(k), x(n+1-k)]`` of this run's ``n`` (exact for odd ``n``; for even ``n`` a
    lower bound: both middle values inside)."""
    half = (n + 1) // 2  # a rerun median below x(k) needs this many values below it
    tail = math.fsum(_count_below(k, n, n, i) for i in range(half, n + 1))
    return 1 - 2 * tail


def _rerun_rank(n: int) -> int | None:
    """The largest k whose rerun interval covers at least CONFIDENCE, or None."""
    found = [k for k in range(1, (n + 1) // 2 + 1) if rerun_coverage(n, k) >= CONFIDENCE]
    return max(found) if found else None


def _median_rank(n: int) -> int | None:
    """The largest k with P(x(k) <= the true median <= x(n+1-k)) >= CONFIDENCE."""
    found = [
        k
        for k in range(1, (n + 1) // 2 + 1)
        if 1 - 2 * math.fsum(math.comb(n, j) for j in range(k)) / 2**n >= CONFIDENCE
    ]
    return max(found) if found else None


#: Fewest processes with a rerun interval (9: [min, max] covers 97.1 %; 8 gives 92.3 %).
RERUN_PROCESSES = next(n for n in range(1, 100) if _rerun_rank(n) is not None)


@dataclass(frozen=True)
class Estimate:
    """One timed figure from its processes' ops/s."""

    ops_per_sec: float  # the median over processes
    process_ops_per_sec: tuple[float, ...]
    ci95: tuple[float, float] | None  # of the median; None below 6 processes
    rerun: tuple[float, float] | None  # where a rerun's median lands; None below 9

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
            "rerun": list(self.rerun) if self.rerun else None,
        }


def from_rates(samples: Sequence[float]) -> Estimate:
    """The estimate from each process's ops/s (NaN when one of them is not a number)."""
    if not samples:
        return Estimate(0.0, (), None, None)
    if not all(math.isfinite(x) for x in samples):
        return Estimate(math.nan, tuple(samples), None, None)
    ordered, n = sorted(samples), len(samples)

    def interval(k: int | None) -> tuple[float, float] | None:
        return None if k is None else (ordered[k - 1], ordered[n - k])

    return Estimate(
        statistics.median(samples),
        tuple(samples),
        interval(_median_rank(n)),
        interval(_rerun_rank(n)),
    )


def estimate(operation: Mapping[str, Any]) -> Estimate:
    """The figure of one timed stream of a report (see the module's docstring)."""
    return from_rates(rates(process_values(operation)))


def not_enough(processes: int, needed: int = MIN_PROCESSES) -> str:
    """What a figure with too few processes says instead of a verdict or an interval."""
    return (
        f"not enough independent samples to judge: {processes} worker process"
        f"{'es' if processes != 1 else ''}, at least {needed} are needed "
        "(--preset ci, or --processes)"
    )


def rate_text(operation: Mapping[str, Any]) -> str:
    """'7,916,888 (7.81M-8.02M)': the median ops/s and where a rerun should land; the
    median alone when the figure has too few processes for that."""
    from .numbers import short

    figure = estimate(operation)
    if figure.rerun is None:
        return f"{figure.ops_per_sec:,.0f}"
    low, high = figure.rerun
    return f"{figure.ops_per_sec:,.0f} ({short(low)}-{short(high)})"


def spread_note(report: Mapping[str, Any]) -> str:
    """One line saying what the figures and their intervals are, or why there is none."""
    counts = sorted(
        {
            estimate(operation).processes
            for result in report["results"]
            for operation in result["operations"].values()
        }
    )
    fewest = counts[0] if counts else 0
    if fewest >= RERUN_PROCESSES:
        return (
            f"ops/s: median of {fewest}+ worker processes (where a rerun's median should "
            "land, 95%, if the machine stays as it was)"
        )
    return (
        f"ops/s: median of {fewest} worker process{'es' if fewest != 1 else ''}, no "
        f"interval: {not_enough(fewest, RERUN_PROCESSES).split(': ', 1)[1]}"
    )
