"""Knowledge's incremental "known everywhere" mark against a full scan of every node."""

from __future__ import annotations

import random

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


@settings(max_examples=300, deadline=None)
@given(
    nodes=st.integers(1, 5),
    steps=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 99), st.integers(0, 99)), max_size=80),
)
def test_the_incremental_mark_is_the_full_scans(
    nodes: int, steps: list[tuple[float, int, int]]
) -> None:
    fast, slow = Knowledge(nodes), FullScan(nodes)
    now = 0.0
    for draw, a, b in steps:
        now += 0.25
        live = [n for n in range(nodes) if slow.live[n]]
        dead = [n for n in range(nodes) if not slow.live[n]]
        if draw < 0.3 and live:
            node = live[a % len(live)]
            fast.accept(node, now)
            slow.accept(node, now)
        elif draw < 0.8 and live:
            src, dst = a % nodes, live[b % len(live)]
            vector = fast.snapshot(src)
            fast.receive(dst, dict(vector), now, list)
            slow.receive(dst, dict(vector), now)
        elif draw < 0.9 and live:  # every node may end up down at once
            node = live[a % len(live)]
            fast.crash(node, now, [])
            slow.crash(node, now)
        elif dead:
            node, lost = dead[a % len(dead)], b % 2 == 0
            fast.restart(node, lost, [])
            slow.restart(node, lost)
        assert fast.reflected == slow.reflected
        assert fast.staleness == slow.staleness


def test_the_mark_rises_after_every_node_was_down_at_once() -> None:
    """Seeded random runs (crashes of every node included) against the full scan."""
    for trial in range(1500):
        rng = random.Random(trial)
        nodes = rng.randint(1, 5)
        fast, slow = Knowledge(nodes), FullScan(nodes)
        now = 0.0
        for _ in range(60):
            now += rng.random()
            live = [n for n in range(nodes) if slow.live[n]]
            dead = [n for n in range(nodes) if not slow.live[n]]
            draw = rng.random()
            if draw < 0.3 and live:
                node = rng.choice(live)
                fast.accept(node, now)
                slow.accept(node, now)
            elif draw < 0.8 and live:
                src, dst = rng.randrange(nodes), rng.choice(live)
                vector = fast.snapshot(src)
                fast.receive(dst, dict(vector), now, list)
                slow.receive(dst, dict(vector), now)
            elif draw < 0.9 and live:
                node = rng.choice(live)
                fast.crash(node, now, [])
                slow.crash(node, now)
            elif dead:
                node, lost = rng.choice(dead), rng.random() < 0.5
                fast.restart(node, lost, [])
                slow.restart(node, lost)
            assert (fast.reflected, fast.staleness) == (slow.reflected, slow.staleness), trial


def live_now(scan: FullScan) -> list[int]:
    return [n for n in range(scan.nodes) if scan.live[n]]


def test_late_reordered_and_repeated_snapshots_merge_as_whole_vectors() -> None:
    """Snapshots as the engine sends them (shared, merged through their ``hot`` entries)
    delivered late, out of order, more than once, after crashes and restarts of either
    end: the same marks, staleness records (in order) and vectors as the full scan's."""
    for trial in range(1500):
        rng = random.Random(trial)
        nodes = rng.randint(1, 6)
        fast, slow = Knowledge(nodes), FullScan(nodes)
        in_flight: list[tuple[int, dict[int, int]]] = []
        now = 0.0
        for _ in range(80):
            now += rng.random()
            live = [n for n in range(nodes) if slow.live[n]]
            dead = [n for n in range(nodes) if not slow.live[n]]
            draw = rng.random()
            if draw < 0.25 and live:
                node = rng.choice(live)
                fast.accept(node, now)
                slow.accept(node, now)
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
                    fast.receive(dst, vector, now, list)
                    slow.receive(dst, vector, now)
            elif draw < 0.93 and live:
                node = rng.choice(live)
                fast.crash(node, now, [])
                slow.crash(node, now)
            elif dead:
                node, lost = rng.choice(dead), rng.random() < 0.5
                fast.restart(node, lost, [])
                slow.restart(node, lost)
            assert (fast.reflected, fast.staleness) == (slow.reflected, slow.staleness), trial
            assert fast.known == slow.known, trial
            assert [list(k) for k in fast.known] == [list(k) for k in slow.known], trial
            for key, done in slow.reflected.items():  # what the shortcuts rely on
                lagging = sum(slow.known[n].get(key, 0) <= done for n in live_now(slow))
                assert fast.lagging[key] == lagging, trial
