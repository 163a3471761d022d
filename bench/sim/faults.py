"""Faults: small immutable descriptions of what goes wrong, and when.

Every fault is active on the half-open virtual-time window ``[start, end)``; ``end`` None
means "until quiescence" (when the clients stop, every fault ends: partitions heal, crashed
nodes restart). Overlapping faults compose: latencies add, loss and duplication draws are
independent per fault, a link is cut while any partition cuts it, a node is down while any
crash holds it.

* :class:`LatencyFault`: adds ``latency`` seconds to every message and ``jitter`` to its
  uniform random spread (a spread above the sync interval reorders messages).
* :class:`DuplicateFault`: each message is delivered a second time with ``probability``
  (with its own latency draw, so the copy may arrive first).
* :class:`LossFault`: each message is dropped with ``probability``.
* :class:`PartitionFault`: the nodes are split into sides; messages between sides are
  dropped (at send and at delivery time). ``one_way``: only messages *from* the first
  side to the others are dropped. Layouts: ``isolate`` (``node`` alone), ``minority``
  (nodes ``0..(n-1)//2 - 1``), ``halves`` (``0..n//2 - 1`` and the rest), ``groups``
  (explicit lists; unlisted nodes form one more side), ``random`` (drawn by the faults
  generator: a random non-empty proper subset).
* :class:`CrashFault`: ``node`` stops: it takes no client operation (they are rejected),
  does not sync, and drops what arrives. At ``end`` it restarts *empty* (a fresh
  ``strategy.replica(node)``) unless ``persist`` (its state survived on disk).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from . import checks
from .errors import SimUsageError

LAYOUTS = ("isolate", "minority", "halves", "groups", "random")


@dataclass(frozen=True, kw_only=True)
class Fault:
    """A fault active on ``[start, end)`` virtual seconds (``end`` None: until quiescence)."""

    type: ClassVar[str] = "fault"
    start: float
    end: float | None = None

    def validate(self, nodes: int) -> None:
        where = f"{self.type} fault"
        checks.number(f"{where} start", self.start)
        if self.end is not None and checks.number(f"{where} end", self.end) <= self.start:
            raise SimUsageError(f"{where}: end ({self.end}) must be after start ({self.start})")

    def label(self) -> str:
        end = "quiescence" if self.end is None else f"{self.end:g}"
        return f"{self.type} {self.start:g}-{end}s"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = [list(group) for group in value]
            data[field.name] = value
        return data


@dataclass(frozen=True, kw_only=True)
class LatencyFault(Fault):
    type: ClassVar[str] = "latency"
    latency: float = 0.0
    jitter: float = 0.0

    def validate(self, nodes: int) -> None:
        super().validate(nodes)
        checks.number("latency fault latency", self.latency)
        checks.number("latency fault jitter", self.jitter)


@dataclass(frozen=True, kw_only=True)
class DuplicateFault(Fault):
    type: ClassVar[str] = "duplicate"
    probability: float = 0.2

    def validate(self, nodes: int) -> None:
        super().validate(nodes)
        checks.probability("duplicate fault probability", self.probability)


@dataclass(frozen=True, kw_only=True)
class LossFault(Fault):
    type: ClassVar[str] = "loss"
    probability: float = 0.2

    def validate(self, nodes: int) -> None:
        super().validate(nodes)
        checks.probability("loss fault probability", self.probability)


@dataclass(frozen=True, kw_only=True)
class PartitionFault(Fault):
    type: ClassVar[str] = "partition"
    layout: str = "halves"
    node: int = 0
    groups: tuple[tuple[int, ...], ...] = ()
    one_way: bool = False

    def validate(self, nodes: int) -> None:
        super().validate(nodes)
        if nodes < 2:
            raise SimUsageError("a partition needs at least 2 nodes")
        if self.layout not in LAYOUTS:
            raise SimUsageError(
                f"partition layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}"
            )
        checks.node("partition node", self.node, nodes)
        if not isinstance(self.one_way, bool):
            raise SimUsageError(f"partition one_way must be true or false, got {self.one_way!r}")
        if self.layout == "groups":
            seen: list[int] = []
            for group in self.groups:
                for member in group:
                    checks.node("partition group member", member, nodes)
                    if member in seen:
                        raise SimUsageError(f"partition groups list node {member} twice")
                    seen.append(member)
            if len(self.sides(nodes, random.Random(0))) < 2:
                raise SimUsageError("partition groups must split the nodes into 2 sides or more")

    def sides(self, nodes: int, rng: random.Random) -> list[list[int]]:
        """The sides of the partition, each sorted; ``rng`` is used by ``random`` only."""
        everyone = list(range(nodes))
        if self.layout == "isolate":
            first = [self.node]
        elif self.layout == "minority":
            first = everyone[: max(1, (nodes - 1) // 2)]
        elif self.layout == "halves":
            first = everyone[: max(1, nodes // 2)]
        elif self.layout == "random":
            first = sorted(rng.sample(everyone, rng.randint(1, nodes - 1)))
        else:
            listed = [sorted(group) for group in self.groups if group]
            rest = [n for n in everyone if not any(n in group for group in listed)]
            return listed + ([rest] if rest else [])
        return [first, [n for n in everyone if n not in first]]

    def cut_links(self, sides: list[list[int]]) -> list[tuple[int, int]]:
        """Directed links (src, dst) this partition cuts, in a fixed order."""
        side_of = {n: i for i, side in enumerate(sides) for n in side}
        members = sorted(side_of)
        cut = []
        for src in members:
            for dst in members:
                if side_of[src] == side_of[dst]:
                    continue
                if not self.one_way or side_of[src] == 0:
                    cut.append((src, dst))
        return cut


@dataclass(frozen=True, kw_only=True)
class CrashFault(Fault):
    type: ClassVar[str] = "crash"
    node: int = 0
    persist: bool = False

    def validate(self, nodes: int) -> None:
        super().validate(nodes)
        checks.node("crash node", self.node, nodes)
        if not isinstance(self.persist, bool):
            raise SimUsageError(f"crash persist must be true or false, got {self.persist!r}")


FAULT_TYPES: dict[str, type[Fault]] = {
    cls.type: cls for cls in (LatencyFault, DuplicateFault, LossFault, PartitionFault, CrashFault)
}


def fault_from_mapping(data: Mapping[str, Any]) -> Fault:
    """One fault from a mapping with a ``type`` key (as in a scenario's ``[[faults]]``)."""
    if not isinstance(data, Mapping):
        raise SimUsageError(f"a fault must be a table with a 'type', got {data!r}")
    kind = data.get("type")
    cls = FAULT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SimUsageError(f"unknown fault type {kind!r} (known: {', '.join(FAULT_TYPES)})")
    names = {field.name for field in fields(cls)}
    checks.known_keys(f"{kind} fault", data, names | {"type"})
    if "start" not in data:
        raise SimUsageError(f"{kind} fault needs a start time")
    values = {key: value for key, value in data.items() if key != "type"}
    if "groups" in values:
        groups = values["groups"]
        if not isinstance(groups, list | tuple) or not all(
            isinstance(group, list | tuple) for group in groups
        ):
            raise SimUsageError("partition groups must be a list of lists of node ids")
        values["groups"] = tuple(tuple(group) for group in groups)
    for key in ("start", "end", "latency", "jitter", "probability"):
        if key in values and values[key] is not None:
            checks.number(f"{kind} fault {key}", values[key])
    return cls(**values)
