"""A scenario: the cluster, the clients, the network and the faults of one simulated run.

Times are virtual seconds. ``Scenario.from_mapping`` reads a mapping (e.g. parsed TOML:
top-level keys or a ``[scenario]`` table, plus ``[[faults]]`` tables each with a ``type``);
``to_dict`` echoes every field (``from_mapping(s.to_dict()) == s``).

Network model between nodes: a message takes ``latency + U(0, jitter)`` seconds (plus any
active :class:`~.faults.LatencyFault`); with a jitter above the gap between two messages on
one link they may arrive out of order.

A message whose destination is "every other replica" (a broadcast) goes to every other
node, or with ``fanout = k`` (below ``nodes - 1``) to k distinct peers drawn from the
``gossip`` generator for each such message: epidemic gossip, as large clusters run it
(Akka Distributed Data gossips to random nodes; Cassandra to one to three peers a second).
A full-state CRDT then reaches every node through the peers that merged it; a strategy
that broadcasts only its own deltas or operations relies on whatever else it sends
(``orset``: the answers to its digests; ``vclock``: its periodic full state) or never
converges (``pncounter-op``). The default convergence budget grows by :attr:`Scenario.spread_rounds`
sync intervals. A scenario file::

    nodes = 5
    operations = 10000
    seed = 7
    vanish_rate = 0.0

    [[faults]]
    type = "partition"
    layout = "groups"
    groups = [[0, 1], [2, 3, 4]]
    start = 100.0
    end = 200.0

    [[faults]]
    type = "crash"
    node = 2
    start = 300.0
    end = 350.0
    persist = false
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..workload import (
    MAX_NODES,
    MAX_PASS_OPERATIONS,
    MAX_SECONDS,
    MAX_USERS,
    MIN_SECONDS,
    Shape,
    SpecError,
    load_toml,
    merged_table,
)
from . import checks
from .errors import SimUsageError
from .faults import Fault, fault_from_mapping


def fanout_peers(text: str) -> int | None:
    """A fan-out as a command line gives it: ``"all"`` (every other node: None) or a whole
    number of peers (checked with the scenario); anything else is a :class:`SimUsageError`."""
    if text.strip() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise SimUsageError(f"--fanout takes a number of peers or 'all', got {text!r}") from None


#: Syncs and error samples, over every node, one simulation may schedule.
MAX_PERIODIC_EVENTS = 20_000_000


@dataclass(frozen=True, kw_only=True)
class Scenario:
    nodes: int = 5
    users: int = 1000
    operations: int = 10_000  # client operations (logins, logouts, heartbeats, reads)
    seed: int = 1
    sync_interval: float = 1.0  # each node calls sync() this often
    fanout: int | None = None  # peers a broadcast goes to; None: every other node
    session_timeout: float = 180.0
    session_length: float = 600.0  # mean seconds online, and offline
    heartbeat_interval: float = 60.0
    vanish_rate: float = 0.05  # share of logouts never sent (the user just goes away)
    reads_per_second: float = 5.0
    latency: float = 0.02  # base one-way message latency
    jitter: float = 0.01  # uniform extra latency in [0, jitter)
    sample_interval: float = 1.0  # the error-sampling grid
    grace: float | None = None  # quiescence length; None: session_timeout + 10 syncs
    convergence_budget: float | None = None  # None: 5 syncs + latency + jitter
    faults: tuple[Fault, ...] = field(default=())
    #: A shaped scenario's moments (``countbench.bench.workload.Shape``; ``[[shapes]]``).
    shapes: tuple[Shape, ...] = field(default=())

    @property
    def quiescence(self) -> float:
        """Seconds of quiescence: long enough, by default, for vanished sessions to expire."""
        if self.grace is not None:
            return self.grace
        return self.session_timeout + 10 * self.sync_interval

    @property
    def gossip(self) -> int | None:
        """Peers per broadcast, or None when a broadcast goes to every other node."""
        if self.fanout is None or self.fanout >= self.nodes - 1:
            return None
        return self.fanout

    @property
    def spread_rounds(self) -> int:
        """Sync rounds a change needs, beyond the first, to reach every node: 0 with full
        broadcast; with gossip to k peers, twice log_(k+1)(nodes), rounded up (push gossip
        reaches all n nodes in about log_(k+1)(n) + ln(n)/k rounds)."""
        k = self.gossip
        if k is None:
            return 0
        return math.ceil(2 * math.log(self.nodes) / math.log(k + 1))

    @property
    def budget(self) -> float:
        """Seconds after quiescence starts within which the nodes must agree."""
        if self.convergence_budget is not None:
            return self.convergence_budget
        return (5 + self.spread_rounds) * self.sync_interval + self.latency + self.jitter

    def validate(self) -> Scenario:
        checks.whole("nodes", self.nodes, low=1, high=MAX_NODES)
        checks.whole("users", self.users, low=1, high=MAX_USERS)
        checks.whole("operations", self.operations, low=1, high=MAX_PASS_OPERATIONS)
        if self.fanout is not None:
            checks.whole("fanout", self.fanout, low=1)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SimUsageError(f"seed must be a whole number, got {self.seed!r}")
        for name in (
            "sync_interval",
            "session_timeout",
            "session_length",
            "sample_interval",
            "heartbeat_interval",
        ):
            checks.number(name, getattr(self, name), low=MIN_SECONDS, high=MAX_SECONDS)
        if self.heartbeat_interval >= self.session_timeout:
            raise SimUsageError(
                f"heartbeat_interval ({self.heartbeat_interval:g}) must be below "
                f"session_timeout ({self.session_timeout:g})"
            )
        checks.probability("vanish_rate", self.vanish_rate)
        for name in ("reads_per_second", "latency", "jitter"):
            checks.number(name, getattr(self, name), high=MAX_SECONDS)
        if self.grace is not None:
            checks.number("grace", self.grace, strict=True, high=MAX_SECONDS)
        if self.convergence_budget is not None:
            checks.number("convergence_budget", self.convergence_budget, high=MAX_SECONDS)
        for fault in self.faults:
            if not isinstance(fault, Fault):
                raise SimUsageError(f"not a fault: {fault!r}")
            fault.validate(self.nodes)
        for shape in self.shapes:
            if not isinstance(shape, Shape):
                raise SimUsageError(f"not a shape: {shape!r}")
            try:
                shape.validate()
            except SpecError as exc:
                raise SimUsageError(str(exc)) from None
        return self

    def check_periodic(self, end: float) -> None:
        """Refuse a run whose syncs or error samples, over every node until ``end``, would
        be more than :data:`MAX_PERIODIC_EVENTS`."""
        for name in ("sync_interval", "sample_interval"):
            every = getattr(self, name)
            events = end / every * self.nodes
            if events > MAX_PERIODIC_EVENTS:
                raise SimUsageError(
                    f"{name} {every:g} s on {self.nodes} nodes for {end:,.0f} s is "
                    f"{events:,.0f} events, above the {MAX_PERIODIC_EVENTS:,} a run may "
                    f"schedule: raise {name} or lower nodes"
                )

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("faults", "shapes")
        }
        data["faults"] = [fault.to_dict() for fault in self.faults]
        if self.shapes:
            data["shapes"] = [asdict(shape) for shape in self.shapes]
        return data

    def with_overrides(self, **changes: Any) -> Scenario:
        return replace(self, **changes).validate()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "scenario") -> Scenario:
        """A validated scenario from plain data; unknown keys and bad values are errors."""
        if not isinstance(data, Mapping):
            raise SimUsageError("a scenario must be a table of fields")
        table = merged_table(data, "scenario", SimUsageError, where)
        allowed = {f.name for f in fields(cls)}
        checks.known_keys("scenario", table, allowed)
        values = dict(table)
        raw_faults = values.pop("faults", [])
        if not isinstance(raw_faults, list | tuple):
            raise SimUsageError("faults must be a list of tables ([[faults]] in TOML)")
        faults = tuple(fault_from_mapping(item) for item in raw_faults)
        raw_shapes = values.pop("shapes", [])
        if not isinstance(raw_shapes, list | tuple):
            raise SimUsageError("shapes must be a list of tables ([[shapes]] in TOML)")
        try:
            shapes = tuple(Shape.from_dict(item) for item in raw_shapes)
        except SpecError as exc:
            raise SimUsageError(str(exc)) from None
        try:
            scenario = cls(**values, faults=faults, shapes=shapes)
        except TypeError as exc:  # pragma: no cover - known_keys already filtered
            raise SimUsageError(f"bad scenario: {exc}") from None
        return scenario.validate()

    @classmethod
    def from_toml(cls, path: Path) -> Scenario:
        return cls.from_mapping(load_toml(path, "scenario", SimUsageError), str(path))
