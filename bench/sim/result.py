"""The outcome of one simulated run (metric definitions: :mod:`.metrics`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .history import History
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
    # operations sent to a crashed node, or (request replicas) not answered in time
    rejected: int
    quiescence_heartbeats: int
    # request replicas: logins/logouts without an answer, sent again at quiescence
    retries: int = 0


@dataclass(frozen=True, slots=True)
class Convergence:
    label: str
    healed_at: float
    drained_after: float | None
    agree_after: float | None
    truth_after: float | None
    allowed_after: float | None = None  # all nodes agree on a value the spec allows


@dataclass(frozen=True, slots=True)
class Final:
    at: float
    truth: int
    values: list[int]
    errors: list[int]
    max_abs_error: int
    agree: bool
    allowed: list[int]  # [low, high]: the final values the specification allows
    in_spec: list[bool]  # per node: its final value is allowed
    lost_changes: int  # accepted changes lost with a crashed incarnation (indeterminate)
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
    specification: str = ""
    meaning: str = ""
    allowed: list[int] = field(default_factory=list)
    #: failed, but the scenario breaks an assumption the specification states
    expected: bool = False
    outside_assumption: list[str] = field(default_factory=list)

    @property
    def bug(self) -> bool:
        """Failed where the specification's assumptions hold: a bug of the strategy."""
        return not self.passed and not self.expected


def encode_series(values: list[int | None]) -> str:
    """A node's column errors as one short string: comma-separated tokens, each a value
    (an integer, or ``n`` for None: the node was down) optionally followed by ``*k`` for a
    run of k equal values. ``[0, 0, 0, 2, None, None]`` -> ``"0*3,2,n*2"``."""
    tokens: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        value = values[i]
        token = "n" if value is None else str(value)
        tokens.append(token if j == i else f"{token}*{j - i + 1}")
        i = j + 1
    return ",".join(tokens)


def decode_series(text: str) -> list[int | None]:
    """The inverse of :func:`encode_series`; ValueError on a malformed string."""
    out: list[int | None] = []
    for token in text.split(",") if text else []:
        value, star, count = token.partition("*")
        repeat = int(count) if star else 1
        if repeat < 1:
            raise ValueError(f"bad run length in {token!r}")
        out.extend([None if value == "n" else int(value)] * repeat)
    return out


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per grid sample of the client phase: max |error| over live nodes, whether a fault
    was active, and per node its signed error ``count - truth`` (None while down)."""

    interval: float
    max_error: list[int]
    fault: list[bool]
    nodes: list[list[int | None]] = field(default_factory=list)

    def _spans(self, width: int) -> list[tuple[int, int]]:
        n = len(self.max_error)
        if n <= width:
            return [(i, i + 1) for i in range(n)]
        return [(c * n // width, (c + 1) * n // width) for c in range(width)]

    def buckets(self, width: int) -> tuple[list[int], list[bool]]:
        """At most ``width`` columns: each the max error and any-fault of its samples."""
        spans = self._spans(width)
        errors = [max(self.max_error[lo:hi]) for lo, hi in spans]
        faults = [any(self.fault[lo:hi]) for lo, hi in spans]
        return errors, faults

    def node_buckets(self, width: int) -> list[list[int | None]]:
        """Per node, the same columns as :meth:`buckets`: each the signed error of largest
        magnitude among the node's samples in the column (the earliest on a tie), None when
        the node was down for the whole column."""
        spans = self._spans(width)
        out: list[list[int | None]] = []
        for series in self.nodes:
            columns: list[int | None] = []
            for lo, hi in spans:
                pick: int | None = None
                for error in series[lo:hi]:
                    if error is not None and (pick is None or abs(error) > abs(pick)):
                        pick = error
                columns.append(pick)
            out.append(columns)
        return out


@dataclass(frozen=True)
class SimResult:
    strategy: str
    scenario: Scenario
    stop: float
    end: float
    operations: Operations
    error: dict[str, ErrorSummary]
    #: distance of samples (``all``) and reads (``reads``) outside the allowed values
    spec_error: dict[str, ErrorSummary]
    reads: ErrorSummary
    reads_rejected: int
    staleness: StalenessSummary
    #: by value: per sampled count (``samples``) and read value (``reads``), the seconds
    #: since the specification last allowed it (``never``: it never did)
    value_staleness: dict[str, StalenessSummary]
    convergence: list[Convergence]
    quiescence: Convergence
    final: Final
    cost: Cost
    faults: list[dict[str, Any]]
    verdict: Verdict
    timeline: Timeline
    trace_hash: str
    trace_lines: int
    trace: list[str] = field(repr=False, compare=False)  # empty unless kept
    reads_partial: int = 0  # answered reads that left out nodes (request replicas)
    history: History | None = field(default=None, repr=False, compare=False)

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
            "spec_error": {name: asdict(s) for name, s in self.spec_error.items()},
            "reads": {
                **asdict(self.reads),
                "rejected": self.reads_rejected,
                "partial": self.reads_partial,
            },
            "staleness": asdict(self.staleness),
            "value_staleness": {k: asdict(v) for k, v in self.value_staleness.items()},
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
                "nodes": [encode_series(n) for n in self.timeline.node_buckets(500)],
            },
            "trace": {"sha256": self.trace_hash, "lines": self.trace_lines},
        }
