"""``pncounter-op``: the operation-based PN-counter, which trusts the network too much.

Every login is an operation ``+1`` and every logout an operation ``-1``, each with a unique
id ``(origin replica, sequence number)``. The replica applies its own operation at once and
queues it; ``sync`` broadcasts the queued operations (in the order they happened) and
forgets them. A receiver adds each operation's delta to its value as it arrives.

Contract: op-based CRDTs assume *reliable causal broadcast with exactly-once delivery*.
Addition commutes, so the order of delivery does not matter; but nothing here deduplicates
(the ids travel only to show what would be needed), so a duplicated message is applied
twice and a lost one never, and every replica that saw one drifts from the others for good.
The in-process drivers (thread, asyncio) and the process driver's queues deliver exactly
once, so there it is exact; the fault simulator's duplication and loss break it, which is
the point of having it next to the state-based ``pncounter`` that shrugs both off.
Consistency claim: eventual (true only under exactly-once delivery). Like ``pncounter`` it
counts events, not users: a repeated login counts twice, a vanished user is never removed.
"""

from __future__ import annotations

import json

from .base import Message, ReplicatedStrategy
from .spec import BALANCE

#: One operation as it travels: [origin replica, sequence number, delta (+1 or -1)].
Operation = tuple[int, int, int]


def encode_ops(ops: list[Operation]) -> bytes:
    return json.dumps([list(op) for op in ops], separators=(",", ":")).encode()


def decode_ops(body: bytes) -> list[Operation]:
    return [(int(src), int(seq), int(delta)) for src, seq, delta in json.loads(body)]


class OpPNCounterReplica:
    """One node: a running total, plus the operations it has not broadcast yet."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.value = 0
        self.sequence = 0  # operations this replica originated
        self.applied = 0  # operations applied, own and received (duplicates included)
        self.outbox: list[Operation] = []

    def _originate(self, delta: int) -> None:
        self.sequence += 1
        self.outbox.append((self.node_id, self.sequence, delta))
        self.apply(delta)

    def apply(self, delta: int) -> None:
        self.value += delta
        self.applied += 1

    def login(self, user: str, now: float) -> None:
        self._originate(1)

    def logout(self, user: str, now: float) -> None:
        self._originate(-1)

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return self.value

    def sync(self, now: float) -> list[Message]:
        if not self.outbox:
            return []
        ops, self.outbox = self.outbox, []
        return [Message(self.node_id, None, encode_ops(ops))]

    def receive(self, message: Message, now: float) -> list[Message]:
        # Deliberately no "seen ids" set: exactly-once delivery is the op-based assumption.
        for _src, _seq, delta in decode_ops(message.body):
            self.apply(delta)
        return []


class OpPNCounterStrategy(ReplicatedStrategy):
    name = "pncounter-op"
    summary = "Op-based PN-counter: broadcasts +1/-1 ops, no dedup (needs exactly-once delivery)."
    specification = BALANCE.assuming_exactly_once()
    replica_class = OpPNCounterReplica
