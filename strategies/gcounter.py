"""``gcounter``: a grow-only counter CRDT, one entry per replica, merged by element-wise max.

Each replica counts the logins it accepted in its own entry; the value is the sum of all
entries. Merge is commutative, associative and idempotent, so replicas that have seen the
same states agree whatever the order or repetition of delivery: eventual consistency.
What it cannot do is decrement: logouts are dropped, so as a count of *online* users it
only ever grows, and the error is exactly the number of logouts. It is here to show that.

Entries belong to replica *incarnations*, not replica ids: a replica's entry id is
``"<node>@<epoch>"`` (:func:`entry_id`), ``epoch`` the time of its first write, as the
actors of ``vclock`` and the tags of ``orset``. A replica restarted without its state is a
new object with the same ``node_id``; were its entry keyed by ``node_id`` alone it would
count again from 0 in the entry the others still hold at the old, higher value, and the
max-merge would discard its new increments until they passed the old value. With the
epoch it writes a fresh entry and the old incarnation's entry keeps what it counted. The
cost: one entry per incarnation that ever wrote (a crash without persisted state adds
one). What a crash loses is only what its incarnation accepted and never sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .base import Message, ReplicatedStrategy
from .spec import LOGINS

T = TypeVar("T")

#: An entry's owner: a replica id (int), or a replica incarnation ``"<node>@<epoch>"``.
Entry = int | str


def entry_id(node_id: int, epoch: float) -> str:
    """The entry id of incarnation ``epoch`` (time of its first write) of replica ``node_id``."""
    return f"{node_id}@{epoch!r}"


def entry_order(entry: Entry) -> tuple[int, int, str]:
    """A total order over entry ids of both kinds: ints first, by value, then strings."""
    if isinstance(entry, str):
        return (1, 0, entry)
    return (0, entry, "")


class Incarnation:
    """The entry id a replica writes under, fixed at its first write (see the module)."""

    __slots__ = ("entry", "node_id")

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.entry: str | None = None

    def at(self, now: float) -> str:
        if self.entry is None:
            self.entry = entry_id(self.node_id, now)
        return self.entry


class GCounter:
    """Grow-only counter: entry id (replica, or replica incarnation) -> its count.

    ``counts`` is read-only outside the class: the sum and the canonical items are kept
    up to date by ``increment`` and ``merge`` (a read or a sync must not cost a pass over
    every entry a hundred replicas wrote)."""

    __slots__ = ("_items", "_total", "counts", "version")

    def __init__(self, counts: Mapping[Entry, int] | None = None) -> None:
        self.counts: dict[Entry, int] = dict(counts or {})
        self._total = sum(self.counts.values())
        self._items: list[tuple[Entry, int]] | None = None
        self.version = 0  # bumped by every change: lets an encoder reuse its last bytes

    def increment(self, replica: Entry, amount: int = 1) -> None:
        if amount < 0:
            raise ValueError("a grow-only counter cannot decrease")
        self.counts[replica] = self.counts.get(replica, 0) + amount
        self._total += amount
        self._items = None
        self.version += 1

    def merge(self, other: GCounter) -> None:
        """Take the element-wise maximum of both states, in place."""
        counts = self.counts
        if other.counts.items() <= counts.items():  # nothing new: a C-speed test
            return
        total = self._total
        changed = False
        for replica, value in other.counts.items():
            old = counts.get(replica, 0)
            if value > old:
                counts[replica] = value
                total += value - old
                changed = True
        if changed:
            self._total = total
            self._items = None
            self.version += 1

    def value(self) -> int:
        return self._total

    def copy(self) -> GCounter:
        return GCounter(self.counts)

    def items(self) -> list[tuple[Entry, int]]:
        """Non-zero entries sorted by entry id: the canonical form of the state."""
        if self._items is None:
            entries = [(replica, value) for replica, value in self.counts.items() if value]
            try:  # ids of one kind: their natural order is entry_order's, and C-fast
                entries.sort()
            except TypeError:
                entries.sort(key=lambda item: entry_order(item[0]))
            self._items = entries
        return list(self._items)

    @classmethod
    def from_items(cls, items: Iterable[Iterable[Entry]]) -> GCounter:
        counts: dict[Entry, int] = dict(items)  # type: ignore[arg-type]
        if not set(map(type, counts)) <= {str} or not set(map(type, counts.values())) <= {int}:
            counts = {
                replica if isinstance(replica, str) else int(replica): int(value)
                for replica, value in counts.items()
            }
        return cls(counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GCounter):
            return NotImplemented
        return self.items() == other.items()

    def __repr__(self) -> str:
        return f"GCounter({dict(self.items())})"


def encode_counts(counts: GCounter) -> bytes:
    return json.dumps(counts.items(), separators=(",", ":")).encode()


def decode_counts(body: bytes) -> GCounter:
    return GCounter.from_items(json.loads(body))


_MEMORIES: list[list[Any]] = []


def remembering(parse: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """``parse`` that remembers its last body and answer: a broadcast delivers one body to
    every peer, so every replica after the first merges the state already parsed. The
    answer is shared, so a caller must only read it (as ``merge`` does its argument).
    :func:`forget_received` drops what every such parser remembers."""
    last: list[tuple[bytes, T]] = []
    _MEMORIES.append(last)

    def parse_remembered(body: bytes) -> T:
        if last:
            seen, value = last[0]
            if seen is body or seen == body:
                return value
        value = parse(body)
        last[:] = [(body, value)]
        return value

    return parse_remembered


def forget_received() -> None:
    """Drop the last parsed message of every :func:`remembering` parser (a memory
    measurement counts the replicas' state, not that one message)."""
    for memory in _MEMORIES:
        memory.clear()


#: decode_counts for ``receive``: its answer is shared, never to be changed.
_received_counts = remembering(decode_counts)


class GCounterReplica:
    """One node: counts its own logins in its incarnation's entry, ignores logouts,
    gossips its whole state."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.incarnation = Incarnation(node_id)
        self.state = GCounter()

    def login(self, user: str, now: float) -> None:
        self.state.increment(self.incarnation.at(now))

    def logout(self, user: str, now: float) -> None:
        return None

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return self.state.value()

    def sync(self, now: float) -> list[Message]:
        return [Message(self.node_id, None, encode_counts(self.state))]

    def receive(self, message: Message, now: float) -> list[Message]:
        self.state.merge(_received_counts(message.body))
        return []


class GCounterStrategy(ReplicatedStrategy):
    name = "gcounter"
    summary = "Grow-only CRDT counter: merges by max, cannot count logouts (over-counts)."
    specification = LOGINS
    replica_class = GCounterReplica
