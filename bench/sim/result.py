"""The outcome of one simulated run (metric definitions: :mod:`.metrics`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .metrics import ErrorSummary, StalenessSummary
from .scenario import Scenario


@dataclass(frozen=True, slots=True)
class Operations:
    logins: int
    logouts: int
    heartbeats: int
    reads: int
    vanished: int
    accepted_logins: int
    accepted_logouts: int
    rejected: int  # operations sent to a crashed node (reads included)
    quiescence_heartbeats: int


@dataclass(frozen=True, slots=True)
class Convergence:
    label: str
    healed_at: float
    drained_after: float | None
    agree_after: float | None
    truth_after: float | None


@dataclass(frozen=True, slots=True)
class Final:
    at: float
    truth: int
    values: list[int]
    errors: list[int]
    max_abs_error: int
    agree: bool
    accepted_balance: int
    vanished: int
    vanished_unexpired: int


@dataclass(frozen=True, slots=True)
class Cost:
    client_operations: int
    messages: int
    bytes: int
    messages_per_operation: float
    bytes_per_operation: float
    metadata_bytes_mean: float
    metadata_bytes_max: int
    messages_total: int  # whole run, quiescence included
    delivered: int
    duplicated: int
    lost: int
    cut: int
    to_down_node: int
    in_flight_at_end: int


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    claim: str
    rule: str
    reasons: list[str]
    seed: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per grid sample of the client phase: max |error| over live nodes, and whether a
    fault was active."""

    interval: float
    max_error: list[int]
    fault: list[bool]

    def buckets(self, width: int) -> tuple[list[int], list[bool]]:
        """At most ``width`` columns: each the max error and any-fault of its samples."""
        n = len(self.max_error)
        if n <= width:
            return list(self.max_error), list(self.fault)
        errors, faults = [], []
        for column in range(width):
            lo, hi = column * n // width, (column + 1) * n // width
            errors.append(max(self.max_error[lo:hi]))
            faults.append(any(self.fault[lo:hi]))
        return errors, faults


@dataclass(frozen=True)
class SimResult:
    strategy: str
    scenario: Scenario
    stop: float
    end: float
    operations: Operations
    error: dict[str, ErrorSummary]
    reads: ErrorSummary
    reads_rejected: int
    staleness: StalenessSummary
    convergence: list[Convergence]
    quiescence: Convergence
    final: Final
    cost: Cost
    faults: list[dict[str, Any]]
    verdict: Verdict
    timeline: Timeline
    trace_hash: str
    trace: list[str] = field(repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; the trace is represented by its hash (and length)."""
        errors, faults = self.timeline.buckets(500)
        return {
            "strategy": self.strategy,
            "seed": self.scenario.seed,
            "scenario": self.scenario.to_dict(),
            "phases": {"stop": self.stop, "end": self.end, "budget": self.scenario.budget},
            "operations": asdict(self.operations),
            "error": {name: asdict(summary) for name, summary in self.error.items()},
            "reads": {**asdict(self.reads), "rejected": self.reads_rejected},
            "staleness": asdict(self.staleness),
            "convergence": [asdict(c) for c in self.convergence],
            "quiescence": asdict(self.quiescence),
            "final": asdict(self.final),
            "cost": asdict(self.cost),
            "faults": self.faults,
            "verdict": asdict(self.verdict),
            "timeline": {
                "interval": self.timeline.interval,
                "columns": len(errors),
                "samples": len(self.timeline.max_error),
                "max_error": errors,
                "fault": faults,
            },
            "trace": {"sha256": self.trace_hash, "lines": len(self.trace)},
        }
