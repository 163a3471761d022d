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

Cost: a message merges only its sender's entries above ``reflected`` (the mark every live
node has reached, which never falls), not the whole vector; see :class:`Snapshot`.
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
    allowed_after: float | None = None  # ... and lie in the values the spec allows
    sampling: bool = True  # still looking at grid samples for agreement


class Snapshot(dict[int, int]):
    """A node's vector when it sent a message, shared by every message of that send and of
    later sends while the vector stays the same: never mutate one.

    ``hot`` holds (at least) its entries above the known-everywhere mark
    (``Knowledge.reflected``) as of ``rises``. The mark never falls, and a live node knows
    at least the mark of every origin (unless it restarted behind it, see
    ``Knowledge.behind``), so no other entry can raise a receiver: a delivery compares
    those only. ``rank`` is the sender's position of each origin in its vector, the order
    in which a merge of the whole vector raises them."""

    __slots__ = ("hot", "rank", "rises")
    hot: dict[int, int]
    rank: dict[int, int]
    rises: int


class Knowledge:
    __slots__ = (
        "awaited",
        "behind",
        "hot",
        "incarnation",
        "known",
        "lagging",
        "live",
        "live_hot",
        "live_known",
        "nodes",
        "rank",
        "reflected",
        "rises",
        "snapshots",
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
        self.awaited = [0] * nodes  # per node: the watches (made here) still pending on it
        self.rises = 0  # how many times a ``reflected`` entry rose
        # Per node: the entries of ``known`` above ``reflected`` (and maybe some at or below
        # it, until the mark rises or the node restarts); the position of each origin in
        # ``known`` (the order of a vector's entries: a merge raises them in that order, and
        # so orders the staleness records); the origins it knows less of than ``reflected``
        # (only after a restart, as the mark rose while it was down: until it has caught up
        # it merges whole vectors); its snapshot, while its vector stays the same.
        self.hot: list[dict[int, int]] = [{} for _ in range(nodes)]
        self.rank: list[dict[int, int]] = [{} for _ in range(nodes)]
        self.behind: list[set[int]] = [set() for _ in range(nodes)]
        self.snapshots: list[Snapshot | None] = [None] * nodes
        self.live_known: list[dict[int, int]] = []  # ``known`` of the live nodes
        self.live_hot: list[dict[int, int]] = []  # ``hot`` of the live nodes
        self._live_lists()

    def origin(self, node: int) -> int:
        return self.incarnation[node] * self.nodes + node

    def accept(self, node: int, now: float) -> None:
        key = self.origin(node)
        times = self.times.get(key)
        if times is None:
            times = self.times[key] = []
            self.reflected[key] = 0
        times.append(now)
        seq = len(times)
        mine = self.known[node]
        self.snapshots[node] = None
        if seq == 1 or not self.live[node]:
            if seq == 1:
                rank = self.rank[node]
                rank[key] = len(rank)
            mine[key] = self.hot[node][key] = seq
            self._reflect(key, now)  # counts ``lagging``
            return
        mine[key] = self.hot[node][key] = seq  # it knew the other seq - 1 changes
        lagging = self.lagging
        if seq - 1 <= self.reflected[key] < seq:
            lagging[key] -= 1
        if not lagging[key]:  # otherwise ``_reflect`` would find what ``lagging`` says
            self._reflect(key, now)

    def snapshot(self, node: int) -> Snapshot:
        snap = self.snapshots[node]
        if snap is None:
            snap = self.snapshots[node] = Snapshot(self.known[node])
            snap.hot = self.hot[node].copy()
            snap.rank = self.rank[node]
            snap.rises = self.rises
        elif snap.rises != self.rises and snap.hot:
            # the same vector, fewer of its entries above the mark (messages in flight with
            # it lose only entries that cannot raise their receivers either)
            snap.hot = self.hot[node].copy()
            snap.rises = self.rises
        return snap

    def receive(
        self, node: int, vector: dict[int, int], now: float, watches: Callable[[], list[Watch]]
    ) -> None:
        """Raise ``node``'s vector to include ``vector``; ``watches()`` (called only when
        something was new) gives the open watches to settle."""
        mine = self.known[node]
        behind = self.behind[node]
        get = mine.get
        # (position in the vector, origin, its number there, what ``node`` knew of it)
        # for each entry that raises ``node``, in the vector's order
        new: list[tuple[int, int, int, int]]
        if isinstance(vector, Snapshot) and not behind and self.live[node]:
            hot = vector.hot  # the only entries that can be new (see ``Snapshot``)
            if hot.items() <= mine.items():  # nothing new (most deliveries): a C-speed test
                return
            rank = vector.rank
            new = [(rank[k], k, seq, old) for k, seq in hot.items() if seq > (old := get(k, 0))]
            new.sort()
        elif vector.items() <= mine.items():
            return
        else:
            new = [(0, k, seq, old) for k, seq in vector.items() if seq > (old := get(k, 0))]
        if not new:
            return
        reflected, lagging = self.reflected, self.lagging
        known_rank, above = self.rank[node], self.hot[node]
        for _, key, seq, old in new:  # as ``_reflect`` looks at ``key`` only: olds first
            if not old:
                known_rank[key] = len(known_rank)
            mine[key] = above[key] = seq
            if old <= reflected[key] < seq:
                lagging[key] -= 1
            if not lagging[key]:  # 0 also after every node was down at once
                self._reflect(key, now)
        self.snapshots[node] = None
        if behind:
            behind.difference_update([k for k in behind if get(k, 0) >= reflected[k]])
        if self.awaited[node]:
            for watch in watches():
                if node in watch.pending and self._covers(node, watch.target):
                    self._settle(watch, node, now)

    def crash(self, node: int, now: float, watches: list[Watch]) -> None:
        self.live[node] = False
        self._live_lists()
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
            self.rank[node] = {}
        self.snapshots[node] = None
        mine, lagging = self.known[node], self.lagging
        above: dict[int, int] = {}
        behind: set[int] = set()
        for key, done in self.reflected.items():  # one more live node: none can rise
            seq = mine.get(key, 0)
            lagging[key] += seq <= done
            if seq > done:
                above[key] = seq
            elif seq < done:
                behind.add(key)
        self.hot[node], self.behind[node] = above, behind
        self._live_lists()
        for watch in watches:
            waiting = watch.drained_after is None and node not in watch.pending
            if waiting and not self._covers(node, watch.target):
                self.awaited[node] += 1
                watch.pending.add(node)

    def watch(self, label: str, now: float) -> Watch:
        """Start watching the changes accepted so far until every live node knows them."""
        target = {key: len(times) for key, times in self.times.items() if times}
        pending = {n for n in range(self.nodes) if self.live[n] and not self._covers(n, target)}
        w = Watch(label, now, target, pending)
        for n in pending:
            self.awaited[n] += 1
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
        if node in watch.pending:
            self.awaited[node] -= 1
            watch.pending.discard(node)
        if not watch.pending and watch.drained_after is None:
            watch.drained_after = now - watch.healed_at

    def _live_lists(self) -> None:
        self.live_known = [mine for mine, live in zip(self.known, self.live, strict=True) if live]
        self.live_hot = [above for above, live in zip(self.hot, self.live, strict=True) if live]

    def _reflect(self, key: int, now: float) -> None:
        seqs = [mine.get(key, 0) for mine in self.live_known]
        low = min(seqs, default=-1)
        done = self.reflected[key]
        if low > done:
            times = self.times[key]
            self.staleness.extend(now - times[i] for i in range(done, low))
            self.reflected[key] = done = low
            self.rises += 1
            for above, seq in zip(self.live_hot, seqs, strict=True):
                if seq == low:  # and a node down now is pruned when it restarts
                    above.pop(key, None)
        if low == done:
            self.lagging[key] = seqs.count(low)
        else:  # a node restarted behind the mark, or every node is down
            self.lagging[key] = sum(1 for seq in seqs if seq <= done)
