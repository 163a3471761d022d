"""``compact``: a PN-counter whose retired replicas' entries are folded away safely.

A state-based PN-counter keeps one (P, N) entry per replica id that ever wrote, so with
replicas coming and going its state (and every sync message) grows without bound. This
one lets a retired replica's entry be folded into a live one, the way Akka Distributed
Data prunes a removed node from its ``PNCounter`` (``RemovedNodePruning``: an owner
announces ``PruningInitialized(owner, seen)``, performs ``prune(removed, collapseInto)``
once every node has seen the announcement, and leaves ``PruningPerformed`` markers that
expire after a time to live). That approach was chosen over handoff counters (Almeida and
Baquero) because it keeps the plain PN-counter's per-replica entries and merge, adds only a
small marker per retirement in progress, and needs nothing from the retired replica, which
may already be gone; handoff counters need the leaving node's cooperation and a slot/token
exchange per pair of nodes, much more machinery for the same bound.

Protocol, for ``retire(x, now)`` called on one live replica, the *owner* ``o``:

1. ``o`` adds a marker ``x: (owner o, seen {o}, performed False)`` to its state. Markers
   travel in every state message; a replica that holds a marker adds itself to ``seen``.
2. When ``seen`` covers every member ``o`` knows (the replica ids with an entry, minus ids
   being retired), every member has merged the marker and sent ``o`` a state that holds
   whatever value of ``x`` it had: ``o``'s copy of ``x`` is then the largest in the cluster.
   ``o`` adds ``x``'s P and N to its own entry, deletes ``x``'s entry, and marks the marker
   performed (at ``o``'s ``now``). Since ``o``'s new entry only travels with the performed
   marker, no replica ever counts both ``o``'s new entry and ``x``'s old one: merge drops the
   entry of every id with a performed marker, from either side, and ignores it afterwards.
3. A replica holding a performed marker adds itself to its ``done`` set; a marker is
   dropped once ``done`` covers the members and ``marker_ttl`` seconds have passed since it
   was performed (the TTL covers copies of ``x``'s entry still in flight; Akka's
   ``pruning-marker-time-to-live``).

Merge of markers for one id: a performed marker beats an unperformed one, then the smaller
owner wins, and markers with the same (performed, owner) unite their sets: a join, like the
max-merge of the entries; entry merge then filters ids with performed markers. Both are
commutative, associative and idempotent, so the data type is a CRDT.

Contract: retire a replica only after it has stopped taking client operations for good
(its increments that no live replica has seen by step 2 are lost, as in Akka); call
``retire`` for one id on one replica only, not on the id itself, and never reuse a retired
id. A replica whose own id got retired must not write again. The metadata stays bounded
under churn: live members' entries plus markers of retirements younger than the TTL.
Known limit: entries are keyed by replica id, not by incarnation as in ``pncounter``, so
a replica restarted without its state counts again from 0 in an entry the others hold at
its old value, and the max-merge hides those changes until the new value passes the old
one (the fault simulator shows it: tests/test_sim.py ``RESTART``).

Consistency: eventual, as ``pncounter``: replicas that received the same states hold the
same value whatever the order, delay or duplication of delivery. It counts events, not
users (a repeated login counts twice; vanished users are never removed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .base import Consistency, Message, Mode, Replica, ReplicatedStrategy
from .gcounter import remembering


@dataclass(slots=True)
class Marker:
    """The pruning state of one retired id (see the module docstring)."""

    owner: int
    seen: set[int] = field(default_factory=set)
    performed: bool = False
    at: float = 0.0  # when the owner performed the fold
    done: set[int] = field(default_factory=set)

    def rank(self) -> tuple[bool, int]:
        return (self.performed, -self.owner)

    def copy(self) -> Marker:
        return Marker(self.owner, set(self.seen), self.performed, self.at, set(self.done))

    def to_json(self) -> list[Any]:
        return [self.owner, sorted(self.seen), int(self.performed), self.at, sorted(self.done)]

    @classmethod
    def from_json(cls, data: list[Any]) -> Marker:
        owner, seen, performed, at, done = data
        return cls(
            int(owner), {int(s) for s in seen}, bool(performed), float(at), {int(d) for d in done}
        )


def join_markers(a: Marker, b: Marker) -> Marker:
    if a.rank() > b.rank():
        return a.copy()
    if b.rank() > a.rank():
        return b.copy()
    return Marker(a.owner, a.seen | b.seen, a.performed, max(a.at, b.at), a.done | b.done)


class CompactCounter:
    """Per-id (P, N) entries plus pruning markers of retired ids."""

    __slots__ = ("entries", "markers")

    def __init__(
        self,
        entries: dict[int, tuple[int, int]] | None = None,
        markers: dict[int, Marker] | None = None,
    ) -> None:
        self.entries: dict[int, tuple[int, int]] = dict(entries or {})
        self.markers: dict[int, Marker] = {k: m.copy() for k, m in (markers or {}).items()}
        self._cleanup()

    def _cleanup(self) -> None:
        for node, marker in self.markers.items():
            if marker.performed:
                self.entries.pop(node, None)

    def add(self, node: int, positive: int = 0, negative: int = 0) -> None:
        if positive < 0 or negative < 0:
            raise ValueError("P and N only grow")
        marker = self.markers.get(node)
        if marker is not None and marker.performed:
            raise ValueError(f"replica {node} was retired and folded away")
        p, n = self.entries.get(node, (0, 0))
        self.entries[node] = (p + positive, n + negative)

    def merge(self, other: CompactCounter) -> None:
        for node in sorted(other.markers):
            mine = self.markers.get(node)
            theirs = other.markers[node]
            self.markers[node] = theirs.copy() if mine is None else join_markers(mine, theirs)
        for node in sorted(other.entries):
            marker = self.markers.get(node)
            if marker is not None and marker.performed:
                continue
            p, n = other.entries[node]
            mp, mn = self.entries.get(node, (0, 0))
            self.entries[node] = (max(p, mp), max(n, mn))
        self._cleanup()

    def value(self) -> int:
        return sum(p - n for p, n in self.entries.values())

    def members(self) -> set[int]:
        """Ids with an entry that are not being retired."""
        return {node for node in self.entries if node not in self.markers}

    def encode(self) -> bytes:
        body = {
            "e": [[node, p, n] for node, (p, n) in sorted(self.entries.items())],
            "m": [[node, *m.to_json()] for node, m in sorted(self.markers.items())],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, body: bytes) -> CompactCounter:
        data = json.loads(body)
        entries = {int(node): (int(p), int(n)) for node, p, n in data["e"]}
        markers = {int(row[0]): Marker.from_json(row[1:]) for row in data["m"]}
        return cls(entries, markers)

    def canonical(self) -> tuple[Any, ...]:
        return (
            sorted(self.entries.items()),
            [(k, m.to_json()) for k, m in sorted(self.markers.items())],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactCounter):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __repr__(self) -> str:
        return f"CompactCounter{self.canonical()}"

    def copy(self) -> CompactCounter:
        return CompactCounter(self.entries, self.markers)


#: CompactCounter.decode for ``receive``: its answer is shared, never to be changed
#: (``merge`` copies the markers it takes and only reads the entries).
_received = remembering(CompactCounter.decode)


class CompactReplica:
    """One node: a :class:`CompactCounter`, gossiped whole at every sync, that folds away
    the entries of the replicas retired through it."""

    def __init__(self, node_id: int, marker_ttl: float = 60.0) -> None:
        self.node_id = node_id
        self.marker_ttl = marker_ttl
        self.state = CompactCounter({node_id: (0, 0)})  # announce membership

    def login(self, user: str, now: float) -> None:
        self.state.add(self.node_id, positive=1)

    def logout(self, user: str, now: float) -> None:
        self.state.add(self.node_id, negative=1)

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return max(0, self.state.value())  # clamped as pncounter's (see there)

    def retire(self, node_id: int, now: float) -> None:
        """Start folding ``node_id``'s entry into this replica's (see the module docstring)."""
        if node_id == self.node_id:
            raise ValueError("a replica cannot retire itself")
        if node_id not in self.state.markers:
            self.state.markers[node_id] = Marker(self.node_id, {self.node_id})
        self.advance(now)

    def retiring(self) -> list[int]:
        return sorted(self.state.markers)

    def advance(self, now: float) -> None:
        """Acknowledge markers, perform the folds this replica owns, drop old markers."""
        state, me = self.state, self.node_id
        members = state.members()
        for node in sorted(state.markers):
            marker = state.markers[node]
            marker.seen.add(me)
            if marker.performed:
                marker.done.add(me)
                if marker.done >= members and now - marker.at > self.marker_ttl:
                    del state.markers[node]
            elif marker.owner == me and marker.seen >= members:
                p, n = state.entries.pop(node, (0, 0))
                own_p, own_n = state.entries.get(me, (0, 0))
                state.entries[me] = (own_p + p, own_n + n)
                marker.performed, marker.at, marker.done = True, now, {me}

    def sync(self, now: float) -> list[Message]:
        self.advance(now)
        return [Message(self.node_id, None, self.state.encode())]

    def receive(self, message: Message, now: float) -> list[Message]:
        self.state.merge(_received(message.body))
        self.advance(now)
        return []


class CompactStrategy(ReplicatedStrategy):
    name = "compact"
    summary = "PN-counter that folds retired replicas' entries away (Akka-style pruning)."
    consistency = Consistency.EVENTUAL
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})

    def replica(self, node_id: int) -> Replica:
        return CompactReplica(node_id)
