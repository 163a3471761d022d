"""Knowledge's incremental "known everywhere" mark against a full scan of every node."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countbench.bench.sim.knowledge import Knowledge


class FullScan:
    """The reference: after every raise, the lowest sequence any live node knows."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.known: list[dict[int, int]] = [{} for _ in range(nodes)]
        self.incarnation = [0] * nodes
        self.live = [True] * nodes
        self.times: dict[int, list[float]] = {}
        self.reflected: dict[int, int] = {}
        self.staleness: list[float] = []

    def accept(self, node: int, now: float) -> None:
        key = self.incarnation[node] * self.nodes + node
        times = self.times.setdefault(key, [])
        self.reflected.setdefault(key, 0)
        times.append(now)
        self.known[node][key] = len(times)
        self._reflect(key, now)

    def receive(self, node: int, vector: dict[int, int], now: float) -> None:
        for key, seq in vector.items():
            if seq > self.known[node].get(key, 0):
                self.known[node][key] = seq
                self._reflect(key, now)

    def crash(self, node: int, now: float) -> None:
        self.live[node] = False
        for key in self.times:
            self._reflect(key, now)

    def restart(self, node: int, lost: bool) -> None:
        self.live[node] = True
        if lost:
            self.incarnation[node] += 1
            self.known[node] = {}

    def _reflect(self, key: int, now: float) -> None:
        seqs = [self.known[n].get(key, 0) for n in range(self.nodes) if self.live[n]]
        low, done = min(seqs, default=-1), self.reflected[key]
        if low > done:
            self.staleness.extend(now - self.times[key][i] for i in range(done, low))
            self.reflected[key] = low


class Twins:
    """The incremental :class:`Knowledge` and the :class:`FullScan`, told the same things."""

    def __init__(self, nodes: int) -> None:
        self.fast, self.slow = Knowledge(nodes), FullScan(nodes)

    def live(self) -> list[int]:
        return [n for n in range(self.slow.nodes) if self.slow.live[n]]

    def dead(self) -> list[int]:
        return [n for n in range(self.slow.nodes) if not self.slow.live[n]]

    def accept(self, node: int, now: float) -> None:
        self.fast.accept(node, now)
        self.slow.accept(node, now)

    def receive(self, node: int, vector: dict[int, int], now: float) -> None:
        self.fast.receive(node, vector, now, list)
        self.slow.receive(node, vector, now)

    def crash(self, node: int, now: float) -> None:
        self.fast.crash(node, now, [])
        self.slow.crash(node, now)

    def restart(self, node: int, lost: bool) -> None:
        self.fast.restart(node, lost, [])
        self.slow.restart(node, lost)

    def same_marks(self) -> bool:
        fast, slow = self.fast, self.slow
        return (fast.reflected, fast.staleness) == (slow.reflected, slow.staleness)


@settings(max_examples=300, deadline=None)
@given(
    nodes=st.integers(1, 5),
    steps=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 99), st.integers(0, 99)), max_size=80),
)
def test_the_incremental_mark_is_the_full_scans(
    nodes: int, steps: list[tuple[float, int, int]]
) -> None:
    twins = Twins(nodes)
    now = 0.0
    for draw, a, b in steps:
        now += 0.25
        live, dead = twins.live(), twins.dead()
        if draw < 0.3 and live:
            twins.accept(live[a % len(live)], now)
        elif draw < 0.8 and live:
            src, dst = a % nodes, live[b % len(live)]
            twins.receive(dst, dict(twins.fast.snapshot(src)), now)
        elif draw < 0.9 and live:  # every node may end up down at once
            twins.crash(live[a % len(live)], now)
        elif dead:
            twins.restart(dead[a % len(dead)], b % 2 == 0)
        assert twins.same_marks()


def test_the_mark_rises_after_every_node_was_down_at_once() -> None:
    """Seeded random runs (crashes of every node included) against the full scan."""
    for trial in range(1500):
        rng = random.Random(trial)
        nodes = rng.randint(1, 5)
        twins = Twins(nodes)
        now = 0.0
        for _ in range(60):
            now += rng.random()
            live, dead = twins.live(), twins.dead()
            draw = rng.random()
            if draw < 0.3 and live:
                twins.accept(rng.choice(live), now)
            elif draw < 0.8 and live:
                src, dst = rng.randrange(nodes), rng.choice(live)
                twins.receive(dst, dict(twins.fast.snapshot(src)), now)
            elif draw < 0.9 and live:
                twins.crash(rng.choice(live), now)
            elif dead:
                node = rng.choice(dead)
                twins.restart(node, rng.random() < 0.5)
            assert twins.same_marks(), trial


@pytest.mark.slow
def test_late_reordered_and_repeated_snapshots_merge_as_whole_vectors() -> None:
    """Snapshots as the engine sends them (shared, merged through their ``hot`` entries)
    delivered late, out of order, more than once, after crashes and restarts of either
    end: the same marks, staleness records (in order) and vectors as the full scan's."""
    for trial in range(1500):
        rng = random.Random(trial)
        nodes = rng.randint(1, 6)
        twins = Twins(nodes)
        fast, slow = twins.fast, twins.slow
        in_flight: list[tuple[int, dict[int, int]]] = []
        now = 0.0
        for _ in range(80):
            now += rng.random()
            live, dead = twins.live(), twins.dead()
            draw = rng.random()
            if draw < 0.25 and live:
                twins.accept(rng.choice(live), now)
            elif draw < 0.45 and live:
                src = rng.choice(live)
                vector = fast.snapshot(src)
                assert vector == slow.known[src]
                in_flight.extend((dst, vector) for dst in range(nodes) if rng.random() < 0.6)
            elif draw < 0.85 and in_flight:
                dst, vector = in_flight[rng.randrange(len(in_flight))]
                if rng.random() < 0.7:
                    in_flight.remove((dst, vector))
                if slow.live[dst]:
                    twins.receive(dst, vector, now)
            elif draw < 0.93 and live:
                twins.crash(rng.choice(live), now)
            elif dead:
                node = rng.choice(dead)
                twins.restart(node, rng.random() < 0.5)
            assert twins.same_marks(), trial
            assert fast.known == slow.known, trial
            assert [list(k) for k in fast.known] == [list(k) for k in slow.known], trial
            for key, done in slow.reflected.items():  # what the shortcuts rely on
                lagging = sum(slow.known[n].get(key, 0) <= done for n in twins.live())
                assert fast.lagging[key] == lagging, trial
