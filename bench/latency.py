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

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..reports.verdicts import short_of_rate
from .workload import Arrivals, Op

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


class PacingStopped(RuntimeError):
    """An open-loop call gave up waiting for its intended start: the run is stopping."""


#: The suffix of a histogram of latency from each call's intended start (open loop).
INTENDED = "@intended"
#: The key of a worker's encoded recorder that holds its open-loop figures (JSON).
OPEN_LOOP = "open_loop"


class LatencyRecorder:
    """One worker's histograms, one per operation kind, and its history rows.

    With ``arrivals`` (an open-loop run, see :class:`~countbench.bench.workload.Arrivals`)
    each call first waits for its intended start, the first call's start plus its offset
    in the schedule; a call that is late starts at once. Its service time (start to end)
    goes to the kind's histogram as in a closed loop, and its time from the intended start
    to the end to a second one, ``<kind>@intended``, which a stall of the server fills for
    every call scheduled during it, not only the one that waited (coordinated omission)."""

    def __init__(self, arrivals: Arrivals | None = None) -> None:
        self.histograms = {kind: new_histogram() for kind in KIND_NAMES}
        self.rows: list[tuple[str, str, float, int, int, object]] = []
        self.arrivals = arrivals
        self.intended = {kind: new_histogram() for kind in KIND_NAMES} if arrivals else {}
        self.first_ns: int | None = None  # the first call's intended start
        self.last_end_ns = self.last_intended_ns = 0
        self.calls = 0
        self.intended_sum_ns: dict[str, int] = {}
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make a call waiting for its intended start (open loop, blocking clients) raise
        :class:`PacingStopped` at once: the run is being stopped (Ctrl-C)."""
        self._stopping.set()

    def _intended_ns(self, clock: Callable[[], int]) -> int:
        assert self.arrivals is not None
        offset = self.arrivals.next()
        if self.first_ns is None:
            self.first_ns = clock()
        return self.first_ns + round(offset * 1e9)

    def _paced(self, kind: Op, end: int, intended: int) -> None:
        latency = max(end - intended, LOWEST_NS)
        self.intended[kind].record_value(latency)
        name = KIND_NAMES[kind]
        self.intended_sum_ns[name] = self.intended_sum_ns.get(name, 0) + latency
        self.last_end_ns, self.last_intended_ns = end, intended
        self.calls += 1

    def wrap(self, kind: Op, call: Call) -> Call:
        if kind not in self.histograms:
            return call
        record = self.histograms[kind].record_value
        clock = time.perf_counter_ns
        keep, name = self.rows.append, KIND_NAMES[kind]

        if self.arrivals is not None:
            paced, intended_ns, stopping = self._paced, self._intended_ns, self._stopping

            def open_loop(user: str, now: float) -> object:
                intended = intended_ns(clock)
                early = intended - clock()
                if early > 0 and stopping.wait(early / 1e9):
                    raise PacingStopped("the run was stopped")
                start = clock()
                result = call(user, now)
                end = clock()
                record(end - start)
                paced(kind, end, intended)
                keep((name, user, now, start, end, result))
                return result

            return open_loop

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
        paced, intended_ns = self._paced, self._intended_ns
        open_loop = self.arrivals is not None

        async def timed(user: str, now: float) -> object:
            if open_loop:
                intended = intended_ns(clock)
                early = intended - clock()
                if early > 0:
                    await asyncio.sleep(early / 1e9)
            start = clock()
            result = await call(user, now)
            end = clock()
            record(end - start)
            if open_loop:
                paced(kind, end, intended)
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
        for kind, h in self.intended.items():
            if h.get_total_count():
                encoded[KIND_NAMES[kind] + INTENDED] = h.encode()
        if self.first_ns is not None:
            figures = {
                "first_ns": self.first_ns,
                "last_end_ns": self.last_end_ns,
                "last_intended_ns": self.last_intended_ns,
                "calls": self.calls,
                "sums_ns": self.intended_sum_ns,
            }
            encoded[OPEN_LOOP] = json.dumps(figures).encode()
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
            if name not in (HISTORY, OPEN_LOOP):
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


def open_loop(
    rate: float,
    arrivals: str,
    encoded: Sequence[Mapping[str, bytes]],
    merged: Mapping[str, HdrHistogram],
    service_means: Mapping[str, float],
) -> dict[str, Any] | None:
    """What an open-loop pass measured: the offered rate; the scheduled one, each worker's
    calls over the seconds from its first intended start to its last, summed over the
    workers (what the drawn arrivals asked for: Poisson gaps make it differ a little from
    the offered rate); the achieved one, each worker's calls over the seconds from its first
    intended start to its last answer, summed (workers hold different numbers of calls, so
    each is judged against its own schedule); latency from the intended start per kind and
    over all calls, with the service time over all calls beside it (µs). ``merged``: the
    workers' histograms (:func:`merge` of ``encoded``). None when no call was paced."""
    figures = [json.loads(worker[OPEN_LOOP]) for worker in encoded if OPEN_LOOP in worker]
    if not figures:
        return None
    calls = sum(f["calls"] for f in figures)
    seconds = (max(f["last_end_ns"] for f in figures) - min(f["first_ns"] for f in figures)) / 1e9

    def rate_over(key: str) -> float:
        spans = [((f[key] - f["first_ns"]) / 1e9, f["calls"]) for f in figures]
        return float(sum(n / span for span, n in spans if span > 0))

    achieved, scheduled = rate_over("last_end_ns"), rate_over("last_intended_ns")
    sums: dict[str, int] = {}
    for f in figures:
        for kind, total in f["sums_ns"].items():
            sums[kind] = sums.get(kind, 0) + total
    intended = {
        name.removesuffix(INTENDED): h for name, h in merged.items() if name.endswith(INTENDED)
    }
    service = {name: h for name, h in merged.items() if not name.endswith(INTENDED)}
    latency = {
        kind: summarize(h, sums[kind] / h.get_total_count()) for kind, h in sorted(intended.items())
    }
    latency["all"] = summarize(_total(intended.values()), sum(sums.values()) / calls)
    counted = {kind: h.get_total_count() for kind, h in service.items()}
    service_mean = sum(service_means.get(k, 0.0) * n for k, n in counted.items()) / max(
        1, sum(counted.values())
    )
    summary: dict[str, Any] = {
        "offered_per_sec": rate,
        "arrivals": arrivals,
        "scheduled_per_sec": scheduled,
        "achieved_per_sec": achieved,
        "calls": calls,
        "seconds": seconds,
        "latency": latency,
        "service": {"all": summarize(_total(service.values()), service_mean)},
    }
    return {**summary, "short": short_of_rate(summary)}


def _total(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    total = new_histogram()
    for histogram in histograms:
        total.add(histogram)
    return total
