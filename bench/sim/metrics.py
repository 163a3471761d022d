"""The metrics of a simulated run (error, value and delivery staleness, convergence, the
final counts, cost, the error against the specification) and the verdict. What each one
means exactly, and how strong and eventual claims are judged: ``docs/simulator-metrics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def nearest_rank(sorted_values: list[float], q: float) -> float:
    """The nearest-rank q-quantile of non-empty ascending values."""
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    samples: int
    max: int
    mean: float
    p99: int
    bias: float


class ErrorAccumulator:
    """Signed integer errors -> :class:`ErrorSummary`, in O(distinct values) memory."""

    __slots__ = ("hist", "max", "samples", "sum_abs", "sum_signed")

    def __init__(self) -> None:
        self.hist: dict[int, int] = {}
        self.samples = 0
        self.sum_abs = 0
        self.sum_signed = 0
        self.max = 0

    def add(self, error: int) -> None:
        size = -error if error < 0 else error
        hist = self.hist
        hist[size] = hist.get(size, 0) + 1
        self.samples += 1
        self.sum_abs += size
        self.sum_signed += error
        if size > self.max:
            self.max = size

    def p99(self) -> int:
        if not self.samples:
            return 0
        rank = max(1, math.ceil(0.99 * self.samples))
        seen = 0
        for size in sorted(self.hist):
            seen += self.hist[size]
            if seen >= rank:
                return size
        return self.max  # pragma: no cover - unreachable

    def summary(self) -> ErrorSummary:
        n = self.samples
        return ErrorSummary(
            samples=n,
            max=self.max,
            mean=self.sum_abs / n if n else 0.0,
            p99=self.p99(),
            bias=self.sum_signed / n if n else 0.0,
        )


@dataclass(frozen=True, slots=True)
class StalenessSummary:
    changes: int
    reflected: int
    never: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, changes: int, values: list[float]) -> StalenessSummary:
        done = sorted(values)
        if not done:
            return cls(changes, 0, changes, None, None, None, None, None)
        return cls(
            changes=changes,
            reflected=len(done),
            never=changes - len(done),
            p50=nearest_rank(done, 0.5),
            p90=nearest_rank(done, 0.9),
            p99=nearest_rank(done, 0.99),
            max=done[-1],
            mean=math.fsum(done) / len(done),
        )
