"""What each node knows of each accepted change: the basis of staleness and convergence.

Every login or logout accepted by a node is a *change*, numbered per origin: the origin is
the node *incarnation* that accepted it (a node restarted without its state is a new
incarnation, numbered from 1 again), so a change lost in a crash can never be counted as
known by anyone. Each node holds a vector: origin -> highest change number it knows. A node
knows its own changes at once; every message carries its sender's vector at sending time
and a delivered message raises the receiver's vector to the element-wise maximum.

This is causal knowledge, and it assumes what state-based CRDTs do: a message carries all
its sender knows. For the G- and PN-counter it is exactly "the receiver's entry for the
origin is at least the value after that change" -- except across a restart without
persisted state: a restarted replica re-increments its own entry from zero, and the
element-wise max hides those increments wherever a higher old value is known. Knowledge
says delivered; the value does not move. That loss shows in the count error and in the
accepted-balance figures, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Watch:
    """After a heal at ``healed_at``: when did the backlog of changes drain, and when did
    the nodes' counts first agree (and equal the truth)?"""

    label: str
    healed_at: float
    target: dict[int, int]
    pending: set[int] = field(default_factory=set)
    drained_after: float | None = None
    agree_after: float | None = None
    truth_after: float | None = None
    sampling: bool = True  # still looking at grid samples for agreement


class Knowledge:
    __slots__ = (
        "incarnation",
        "known",
        "lagging",
        "live",
        "nodes",
        "reflected",
        "staleness",
        "times",
    )

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.known: list[dict[int, int]] = [{} for _ in range(nodes)]
        self.incarnation = [0] * nodes
        self.live = [True] * nodes
        self.times: dict[int, list[float]] = {}  # origin -> accept time of each change
        self.reflected: dict[int, int] = {}  # origin -> changes known by every live node
        # origin -> live nodes that know no more than ``reflected`` of it: only when the
        # last of them learns more can ``reflected`` rise (no scan of every node per raise)
        self.lagging: dict[int, int] = {}
        self.staleness: list[float] = []  # per change, seconds until known everywhere

    def origin(self, node: int) -> int:
        return self.incarnation[node] * self.nodes + node

    def accept(self, node: int, now: float) -> None:
        key = self.origin(node)
        times = self.times.get(key)
        if times is None:
            times = self.times[key] = []
            self.reflected[key] = 0
        times.append(now)
        self.known[node][key] = len(times)
        self._reflect(key, now)

    def snapshot(self, node: int) -> dict[int, int]:
        return dict(self.known[node])

    def receive(
        self, node: int, vector: dict[int, int], now: float, watches: Callable[[], list[Watch]]
    ) -> None:
        """Raise ``node``'s vector to include ``vector``; ``watches()`` (called only when
        something was new) gives the open watches to settle."""
        mine = self.known[node]
        if vector.items() <= mine.items():  # nothing new (most deliveries): a C-speed test
            return
        raised = False
        reflected, lagging = self.reflected, self.lagging
        for key, seq in vector.items():
            old = mine.get(key, 0)
            if seq > old:
                mine[key] = seq
                raised = True
                if old <= reflected[key] < seq:
                    lagging[key] -= 1
                if not lagging[key]:  # 0 also after every node was down at once
                    self._reflect(key, now)
        if raised:
            for watch in watches():
                if node in watch.pending and self._covers(node, watch.target):
                    self._settle(watch, node, now)

    def crash(self, node: int, now: float, watches: list[Watch]) -> None:
        self.live[node] = False
        for key in self.times:
            self._reflect(key, now)
        for watch in watches:
            if node in watch.pending:
                self._settle(watch, node, now)

    def restart(self, node: int, lost_state: bool, watches: list[Watch]) -> None:
        self.live[node] = True
        if lost_state:
            self.incarnation[node] += 1
            self.known[node] = {}
        for key, done in self.reflected.items():  # one more live node: none can rise
            self.lagging[key] += self.known[node].get(key, 0) <= done
        for watch in watches:
            if watch.drained_after is None and not self._covers(node, watch.target):
                watch.pending.add(node)

    def watch(self, label: str, now: float) -> Watch:
        """Start watching the changes accepted so far until every live node knows them."""
        target = {key: len(times) for key, times in self.times.items() if times}
        pending = {n for n in range(self.nodes) if self.live[n] and not self._covers(n, target)}
        w = Watch(label, now, target, pending)
        if not pending:
            w.drained_after = 0.0
        return w

    @property
    def changes(self) -> int:
        return sum(len(times) for times in self.times.values())

    def _covers(self, node: int, target: dict[int, int]) -> bool:
        mine = self.known[node]
        return all(mine.get(key, 0) >= seq for key, seq in target.items())

    def _settle(self, watch: Watch, node: int, now: float) -> None:
        watch.pending.discard(node)
        if not watch.pending and watch.drained_after is None:
            watch.drained_after = now - watch.healed_at

    def _reflect(self, key: int, now: float) -> None:
        seqs = [self.known[node].get(key, 0) for node, live in enumerate(self.live) if live]
        low = min(seqs, default=-1)
        done = self.reflected[key]
        if low > done:
            times = self.times[key]
            self.staleness.extend(now - times[i] for i in range(done, low))
            self.reflected[key] = done = low
        self.lagging[key] = sum(1 for seq in seqs if seq <= done)
