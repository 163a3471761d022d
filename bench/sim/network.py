"""The network between nodes: latency, jitter, loss, duplication and cut links.

``route(src, dst)`` decides the fate of one message on one link, drawing only from the
``network`` generator, in a fixed order: one loss draw per active loss fault, then one
latency draw, then per active duplication fault one draw (and a latency draw for the copy).
A message's latency is ``latency + U(0, jitter)`` with the scenario's base values plus the
sums over active :class:`~.faults.LatencyFault` s.
"""

from __future__ import annotations

import random

from .faults import DuplicateFault, Fault, LatencyFault, LossFault


class Network:
    __slots__ = ("_base", "_blocked", "_dups", "_jitter", "_latency", "_lats", "_losses", "rng")

    def __init__(self, nodes: int, latency: float, jitter: float, rng: random.Random) -> None:
        self.rng = rng
        self._base = (latency, jitter)
        self._latency, self._jitter = latency, jitter
        self._blocked = [[0] * nodes for _ in range(nodes)]
        self._losses: list[float] = []
        self._dups: list[float] = []
        self._lats: list[LatencyFault] = []

    def cut(self, src: int, dst: int) -> bool:
        """Whether some active partition cuts the link src -> dst."""
        return self._blocked[src][dst] > 0

    def block(self, links: list[tuple[int, int]], delta: int) -> None:
        """Cut (``delta`` 1) or restore (``delta`` -1) each directed link once."""
        for src, dst in links:
            self._blocked[src][dst] += delta

    def add(self, fault: Fault) -> None:
        if isinstance(fault, LossFault):
            self._losses.append(fault.probability)
        elif isinstance(fault, DuplicateFault):
            self._dups.append(fault.probability)
        elif isinstance(fault, LatencyFault):
            self._lats.append(fault)
            self._relatency()

    def remove(self, fault: Fault) -> None:
        if isinstance(fault, LossFault):
            self._losses.remove(fault.probability)
        elif isinstance(fault, DuplicateFault):
            self._dups.remove(fault.probability)
        elif isinstance(fault, LatencyFault):
            self._lats.remove(fault)
            self._relatency()

    def _relatency(self) -> None:
        latency, jitter = self._base
        for fault in self._lats:
            latency += fault.latency
            jitter += fault.jitter
        self._latency, self._jitter = latency, jitter

    def delay(self) -> float:
        return self._latency + self.rng.random() * self._jitter

    def route(self, src: int, dst: int) -> tuple[str, tuple[float, ...]]:
        """(outcome, delays): ``cut`` or ``lost`` with no delay, ``ok`` with one, ``dup``
        with two or more (one per copy)."""
        if self._blocked[src][dst]:
            return "cut", ()
        rng = self.rng
        for p in self._losses:
            if rng.random() < p:
                return "lost", ()
        first = self._latency + rng.random() * self._jitter
        if not self._dups:
            return "ok", (first,)
        delays = [first]
        for p in self._dups:
            if rng.random() < p:
                delays.append(self._latency + rng.random() * self._jitter)
        return ("dup" if len(delays) > 1 else "ok"), tuple(delays)
