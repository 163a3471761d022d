"""``pncounter``: the state-based PN-counter CRDT, one (P, N) entry per replica.

A replica adds logins to its own P entry and logouts to its own N entry; the value is
sum(P) - sum(N). Merge takes the element-wise maximum of P and of N, which is commutative,
associative and idempotent: replicas that have received the same states hold the same
value whatever the order, delay or duplication of messages. Consistency: eventual; a read
misses the updates of other replicas since their last sync reached this one. It counts
events, not users: a repeated login counts twice, like ``local``.

Entries belong to replica incarnations, ``"<node>@<epoch>"`` with ``epoch`` the time of
the replica's first write (see :mod:`.gcounter`): a replica restarted without its state
writes a fresh entry instead of re-counting from 0 in an entry whose old, higher value
the others still hold (which the max-merge would hide). A crash then loses only the
changes its incarnation accepted and never sent.

``count`` is ``max(0, value())``. ``value()`` itself can be negative: a replica that sees
a user's logout before the merge that brings the login (the logout went to another
replica, or its login was accepted by a replica that then crashed before syncing) holds
more N than P for a while. "How many users are online" is never below 0, so ``count``
clamps; an error metric measured on ``count`` therefore includes the clamp (it reads 0
where the raw value was negative, an error no larger than the raw one).
"""

from __future__ import annotations

import json

from .base import Message, ReplicatedStrategy
from .gcounter import Entry, GCounter, Incarnation, remembering
from .spec import BALANCE


class PNCounter:
    """A positive and a negative :class:`GCounter`; value = P - N."""

    __slots__ = ("_encoded", "negative", "positive")

    def __init__(self, positive: GCounter | None = None, negative: GCounter | None = None) -> None:
        self.positive = positive or GCounter()
        self.negative = negative or GCounter()
        self._encoded: tuple[int, int, bytes] | None = None  # (P version, N version, body)

    def increment(self, replica: Entry, amount: int = 1) -> None:
        self.positive.increment(replica, amount)

    def decrement(self, replica: Entry, amount: int = 1) -> None:
        self.negative.increment(replica, amount)

    def merge(self, other: PNCounter) -> None:
        self.positive.merge(other.positive)
        self.negative.merge(other.negative)

    def value(self) -> int:
        """sum(P) - sum(N): may be negative (see the module docstring)."""
        return self.positive.value() - self.negative.value()

    def copy(self) -> PNCounter:
        return PNCounter(self.positive.copy(), self.negative.copy())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PNCounter):
            return NotImplemented
        return self.positive == other.positive and self.negative == other.negative

    def __repr__(self) -> str:
        return f"PNCounter(P={dict(self.positive.items())}, N={dict(self.negative.items())})"

    def encode(self) -> bytes:
        versions = (self.positive.version, self.negative.version)
        if self._encoded is not None and self._encoded[:2] == versions:
            return self._encoded[2]
        body = {"p": self.positive.items(), "n": self.negative.items()}
        encoded = json.dumps(body, separators=(",", ":")).encode()
        self._encoded = (*versions, encoded)
        return encoded

    @classmethod
    def decode(cls, body: bytes) -> PNCounter:
        data = json.loads(body)
        return cls(GCounter.from_items(data["p"]), GCounter.from_items(data["n"]))


#: PNCounter.decode for ``receive``: its answer is shared, never to be changed.
_received = remembering(PNCounter.decode)


class PNCounterReplica:
    """One node: counts logins up and logouts down in its incarnation's entry, gossips its
    state; ``count`` is the value clamped at 0."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.incarnation = Incarnation(node_id)
        self.state = PNCounter()

    def login(self, user: str, now: float) -> None:
        self.state.increment(self.incarnation.at(now))

    def logout(self, user: str, now: float) -> None:
        self.state.decrement(self.incarnation.at(now))

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return max(0, self.state.value())

    def sync(self, now: float) -> list[Message]:
        return [Message(self.node_id, None, self.state.encode())]

    def receive(self, message: Message, now: float) -> list[Message]:
        self.state.merge(_received(message.body))
        return []


class PNCounterStrategy(ReplicatedStrategy):
    name = "pncounter"
    summary = "State-based PN-counter CRDT: per-replica (P, N), merge by element-wise max."
    specification = BALANCE
    article_approach = "CRDT (PN-Counter)"
    replica_class = PNCounterReplica
