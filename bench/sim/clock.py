"""Virtual time: the event queue, the seeded random generators and the trace.

Contract: nothing here reads a clock. Events are ordered by ``(time, sequence number)``;
the sequence number is assigned at push, so two events at the same virtual time run in the
order they were scheduled, and a run is a pure function of the scenario. Every random draw
comes from a child generator of one root ``random.Random(seed)``, one child per subsystem,
derived by name (so adding a subsystem never shifts another's draws).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from typing import Any

#: An event: (time, sequence, kind, small int argument, any payload).
Event = tuple[float, int, int, int, Any]


class EventQueue:
    """A heap of events ordered by (time, sequence). The payload is never compared."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0

    def push(self, time: float, kind: int, arg: int = 0, payload: Any = None) -> None:
        heapq.heappush(self._heap, (time, self._seq, kind, arg, payload))
        self._seq += 1

    def pop(self) -> Event:
        return heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def pending(self, kind: int) -> int:
        """How many queued events are of ``kind``."""
        return sum(1 for event in self._heap if event[2] == kind)

    @property
    def scheduled(self) -> int:
        """How many events were ever pushed."""
        return self._seq


class Seeds:
    """One root generator; ``child(name)`` is a generator for one subsystem.

    The root draws 64 bits once; a child is ``random.Random(f"{bits}:{name}")``, which
    Python seeds through SHA-512 of the string: the same on every run and platform.
    """

    SUBSYSTEMS = ("workload", "clients", "network", "faults", "gossip")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._bits = random.Random(seed).getrandbits(64)

    def child(self, name: str) -> random.Random:
        return random.Random(f"{self._bits}:{name}")


class HashedLines:
    """A stand-in for the list of trace lines that keeps only their count and hash."""

    __slots__ = ("count", "digest")

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.count = 0

    def append(self, line: str) -> None:
        self.digest.update(line.encode())
        self.digest.update(b"\n")
        self.count += 1

    def __len__(self) -> int:
        return self.count


class Trace:
    """The run's event lines, in order; ``sha256()`` is the run's fingerprint.

    With ``keep`` False the lines are hashed as they come and not stored (a run of
    millions of events would otherwise hold them all); the hash is the same."""

    __slots__ = ("lines",)

    def __init__(self, keep: bool = True) -> None:
        self.lines: list[str] | HashedLines = [] if keep else HashedLines()

    def __len__(self) -> int:
        return len(self.lines)

    def kept(self) -> list[str]:
        """The stored lines (empty when not kept)."""
        return self.lines if isinstance(self.lines, list) else []

    def sha256(self) -> str:
        if isinstance(self.lines, HashedLines):
            return self.lines.digest.copy().hexdigest()
        digest = hashlib.sha256()
        for line in self.lines:
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()
