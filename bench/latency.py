"""Per-operation latency, recorded into HDR histograms in a pass of its own.

Throughput comes from pyperf; latency from one extra, untimed-by-pyperf pass over each
stream in which every call is wrapped by two ``perf_counter_ns`` reads and recorded (in
nanoseconds, 3 significant digits) per operation kind. The clients are closed-loop: a
worker sends its next operation only when the previous one has answered, so a stall delays
the operations queued behind it instead of being recorded by them; these percentiles are
the service time seen by such clients, and under-state what an open-loop arrival process
would see during a stall (coordinated omission). Recording costs about a microsecond per
operation, which is why it is kept out of the throughput figures.

The same pass keeps each call as a history row (kind, user, the workload's time, start and
end in ``perf_counter_ns``, a read's value): ``countbench run --history`` writes them
(docs/history.md, ``source: run``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .workload import Op

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram

LOWEST_NS = 1
HIGHEST_NS = 60_000_000_000
DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
KIND_NAMES = {Op.LOGIN: "login", Op.LOGOUT: "logout", Op.HEARTBEAT: "heartbeat", Op.READ: "count"}

Call = Any  # Callable[[str, float], object], or its coroutine twin in asyncio mode


def new_histogram() -> HdrHistogram:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(LOWEST_NS, HIGHEST_NS, DIGITS)


#: The key of a worker's encoded recorder that holds its history rows, not a histogram.
HISTORY = "history"


class LatencyRecorder:
    """One worker's histograms, one per operation kind, and its history rows."""

    def __init__(self) -> None:
        self.histograms = {kind: new_histogram() for kind in KIND_NAMES}
        self.rows: list[tuple[str, str, float, int, int, object]] = []

    def wrap(self, kind: Op, call: Call) -> Call:
        if kind not in self.histograms:
            return call
        record = self.histograms[kind].record_value
        clock = time.perf_counter_ns
        keep, name = self.rows.append, KIND_NAMES[kind]

        def timed(user: str, now: float) -> object:
            start = clock()
            result = call(user, now)
            end = clock()
            record(end - start)
            keep((name, user, now, start, end, result))
            return result

        return timed

    def wrap_async(self, kind: Op, call: Call) -> Call:
        if kind not in self.histograms:
            return call
        record = self.histograms[kind].record_value
        clock = time.perf_counter_ns
        keep, name = self.rows.append, KIND_NAMES[kind]

        async def timed(user: str, now: float) -> object:
            start = clock()
            result = await call(user, now)
            end = clock()
            record(end - start)
            keep((name, user, now, start, end, result))
            return result

        return timed

    def encode(self) -> dict[str, bytes]:
        """Histograms in HDR's compressed form, and the history rows under
        :data:`HISTORY` as JSON, to cross a process boundary."""
        encoded = {
            KIND_NAMES[kind]: h.encode()
            for kind, h in self.histograms.items()
            if h.get_total_count()
        }
        rows = [
            (kind, user, now, start, end, value if _plain(value) else None)
            for kind, user, now, start, end, value in self.rows
        ]
        encoded[HISTORY] = json.dumps(rows).encode()
        return encoded


def _plain(value: object) -> bool:
    """A read's value JSON can carry as it is (a finite number)."""
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def history_rows(encoded: Mapping[str, bytes]) -> list[list[Any]]:
    """One worker's history rows (see :meth:`LatencyRecorder.encode`)."""
    blob = encoded.get(HISTORY)
    return list(json.loads(blob)) if blob else []


def merge(encoded: Iterable[Mapping[str, bytes]]) -> dict[str, HdrHistogram]:
    from hdrh.histogram import HdrHistogram

    merged: dict[str, HdrHistogram] = {}
    for per_kind in encoded:
        for name, blob in per_kind.items():
            if name != HISTORY:
                merged.setdefault(name, new_histogram()).add(HdrHistogram.decode(blob))
    return merged


def mean_ns(rows: Iterable[Sequence[Any]]) -> dict[str, float]:
    """The exact mean latency of each kind, in nanoseconds, from history rows (hdrh's own
    mean walks every bucket in Python: about 0.2 s per pass)."""
    sums: dict[str, list[int]] = {}
    for kind, _user, _now, start, end, _value in rows:
        total = sums.setdefault(kind, [0, 0])
        total[0] += end - start
        total[1] += 1
    return {kind: total / count for kind, (total, count) in sums.items()}


def summarize(histogram: HdrHistogram, mean: float | None = None) -> dict[str, float]:
    """Count, mean and percentiles in microseconds; ``mean`` (ns) when known exactly."""
    summary: dict[str, float] = {
        "count": histogram.get_total_count(),
        "mean_us": (histogram.get_mean_value() if mean is None else mean) / 1e3,
        "min_us": histogram.get_min_value() / 1e3,
        "max_us": histogram.get_max_value() / 1e3,
    }
    for p in PERCENTILES:
        summary[f"p{p:g}_us"] = histogram.get_value_at_percentile(p) / 1e3
    return summary
