"""``gcounter``: a grow-only counter CRDT, one entry per replica, merged by element-wise max.

Each replica counts the logins it accepted in its own entry; the value is the sum of all
entries. Merge is commutative, associative and idempotent, so replicas that have seen the
same states agree whatever the order or repetition of delivery: eventual consistency.
What it cannot do is decrement: logouts are dropped, so as a count of *online* users it
only ever grows, and the error is exactly the number of logouts. It is here to show that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from .base import Consistency, Message, Mode, Replica, ReplicatedStrategy


class GCounter:
    """Grow-only counter: replica id -> that replica's count."""

    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})

    def increment(self, replica: int, amount: int = 1) -> None:
        if amount < 0:
            raise ValueError("a grow-only counter cannot decrease")
        self.counts[replica] = self.counts.get(replica, 0) + amount

    def merge(self, other: GCounter) -> None:
        """Take the element-wise maximum of both states, in place."""
        counts = self.counts
        for replica, value in other.counts.items():
            if value > counts.get(replica, 0):
                counts[replica] = value

    def value(self) -> int:
        return sum(self.counts.values())

    def copy(self) -> GCounter:
        return GCounter(self.counts)

    def items(self) -> list[tuple[int, int]]:
        """Non-zero entries sorted by replica id: the canonical form of the state."""
        return sorted((replica, value) for replica, value in self.counts.items() if value)

    @classmethod
    def from_items(cls, items: Iterable[Iterable[int]]) -> GCounter:
        return cls({int(replica): int(value) for replica, value in items})

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


class GCounterReplica:
    """One node: counts its own logins, ignores logouts, gossips its whole state."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.state = GCounter()

    def login(self, user: str, now: float) -> None:
        self.state.increment(self.node_id)

    def logout(self, user: str, now: float) -> None:
        return None

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return self.state.value()

    def sync(self, now: float) -> list[Message]:
        return [Message(self.node_id, None, encode_counts(self.state))]

    def receive(self, message: Message, now: float) -> list[Message]:
        self.state.merge(decode_counts(message.body))
        return []


class GCounterStrategy(ReplicatedStrategy):
    name = "gcounter"
    summary = "Grow-only CRDT counter: merges by max, cannot count logouts (over-counts)."
    consistency = Consistency.EVENTUAL
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})

    def replica(self, node_id: int) -> Replica:
        return GCounterReplica(node_id)
