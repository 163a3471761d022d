"""``hll``: a replicated sliding-window HyperLogLog (an example countbench plug-in).

Each replica keeps a HyperLogLog sketch of the users it has seen, where every register
remembers, for each rank it was offered, the last time it was offered that rank (only the
entries that can still be a register's maximum in some window are kept: ranks ascending,
times descending). "Online" means *seen (login or heartbeat) within the session timeout*:
a read estimates the number of distinct users whose last login or heartbeat is at most
``session_timeout`` seconds old, from the registers restricted to entries that recent.

Merge keeps, per register, the entries of both sides that no other entry dominates: it is
commutative, associative and idempotent, so replicas that have received the same states
hold the same sketch (and give the same estimate at the same time) whatever the order,
delay or repetition of messages. The state is at most a few entries per register whatever
the number of users: 2**PRECISION registers, not one entry per user.

What it gets wrong, on purpose (consistency claimed: approximate):

* **Logouts are ignored.** A sketch cannot remove an element, so a user who logs out is
  still counted until ``session_timeout`` after their last login or heartbeat: the count
  is too high by about the number of users who logged out within the last timeout.
  Run it with a session timeout close to the heartbeat interval to shrink that error.
* **It is an estimate**: relative standard error about 1.04 / sqrt(2**PRECISION), 1.6%
  with 4096 registers, in either direction (and exact-ish for small counts, where the
  estimator switches to linear counting).
* **Eventual**: a read misses what other replicas saw since their last sync reached it.
"""

from __future__ import annotations

import hashlib
import math
import struct

from countbench.strategies.base import (
    Consistency,
    Message,
    Replica,
    ReplicatedStrategy,
)
from countbench.strategies.spec import Counts, Specification

PRECISION = 12  # 2**12 = 4096 registers
_ENTRY = struct.Struct("<HBd")  # register index, rank, last time offered


class SlidingHLL:
    """HyperLogLog whose registers answer "max rank offered since time T" for any T."""

    __slots__ = ("m", "p", "registers")

    def __init__(self, precision: int = PRECISION) -> None:
        if not 4 <= precision <= 16:
            raise ValueError("precision must be in [4, 16]")
        self.p = precision
        self.m = 1 << precision
        # register index -> [(rank, last time)], ranks ascending, times strictly descending
        self.registers: dict[int, list[tuple[int, float]]] = {}

    def add(self, item: str, now: float) -> None:
        digest = hashlib.blake2b(item.encode(), digest_size=8).digest()
        h = int.from_bytes(digest, "big")
        bits = 64 - self.p
        rest = h & ((1 << bits) - 1)
        self.offer(h >> bits, bits - rest.bit_length() + 1, now)

    def offer(self, index: int, rank: int, at: float) -> None:
        """Record that register ``index`` saw ``rank`` at time ``at``."""
        entries = self.registers.get(index)
        if entries is None:
            self.registers[index] = [(rank, at)]
            return
        if any(r >= rank and t >= at for r, t in entries):
            return  # a higher-or-equal rank seen no earlier already covers every window
        kept = [(r, t) for r, t in entries if not (r <= rank and t <= at)]
        kept.append((rank, at))
        kept.sort()
        self.registers[index] = kept

    def merge(self, other: SlidingHLL) -> None:
        registers = self.registers
        for index, entries in other.registers.items():
            mine = registers.get(index)
            if mine is None:
                registers[index] = list(entries)
            elif mine != entries:  # converged replicas mostly hold equal registers
                for rank, at in entries:
                    self.offer(index, rank, at)

    def forget_before(self, since: float) -> None:
        """Drop entries older than ``since`` (they can no longer count in a later window)."""
        for index in list(self.registers):
            kept = [(r, t) for r, t in self.registers[index] if t >= since]
            if kept:
                self.registers[index] = kept
            else:
                del self.registers[index]

    def estimate(self, since: float) -> float:
        """Distinct items offered at or after ``since``."""
        m = self.m
        harmonic = 0.0
        nonzero = 0
        for entries in self.registers.values():
            top, at = entries[-1]  # the highest rank, seen least recently of the entries
            if at < since:  # entries seen since `since` are a prefix (times descend)
                top = 0
                for rank, at in entries:
                    if at < since:
                        break
                    top = rank
            if top:
                nonzero += 1
                harmonic += 2.0**-top
        zeros = m - nonzero
        harmonic += zeros  # 2**-0 for every empty register
        raw = 0.7213 / (1 + 1.079 / m) * m * m / harmonic
        if raw <= 2.5 * m and zeros:
            return m * math.log(m / zeros)  # linear counting for small cardinalities
        return raw

    def encode(self) -> bytes:
        return b"".join(
            _ENTRY.pack(index, rank, at)
            for index, entries in sorted(self.registers.items())
            for rank, at in entries
        )

    @classmethod
    def decode(cls, body: bytes, precision: int = PRECISION) -> SlidingHLL:
        """The sketch :meth:`encode` wrote (each register's entries are already a frontier)."""
        sketch = cls(precision)
        registers = sketch.registers
        for index, rank, at in _ENTRY.iter_unpack(body):
            entries = registers.get(index)
            if entries is None:
                registers[index] = [(rank, at)]
            else:
                entries.append((rank, at))
        return sketch


class SlidingHLLReplica:
    """One node: adds logins and heartbeats to its sketch, gossips the whole sketch."""

    def __init__(self, node_id: int, timeout: float) -> None:
        self.node_id = node_id
        self.timeout = timeout
        self.sketch = SlidingHLL()

    def login(self, user: str, now: float) -> None:
        self.sketch.add(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        self.sketch.add(user, now)

    def logout(self, user: str, now: float) -> None:
        return None  # a sketch cannot forget one user: see the module docstring

    def count(self, now: float) -> int:
        return round(self.sketch.estimate(now - self.timeout))

    def sync(self, now: float) -> list[Message]:
        self.sketch.forget_before(now - self.timeout)
        return [Message(self.node_id, None, self.sketch.encode())]

    def receive(self, message: Message, now: float) -> list[Message]:
        self.sketch.merge(SlidingHLL.decode(message.body))
        return []


class HyperLogLogStrategy(ReplicatedStrategy):
    name = "hll"
    summary = (
        "Plug-in example: replicated sliding-window HyperLogLog; ignores logouts "
        "(users count until their session times out)."
    )
    consistency = Consistency.APPROXIMATE
    # Users heard from within the timeout, logouts ignored; an estimate within 5% (about
    # three standard errors of a 4096-register sketch).
    specification = Specification(Counts.SEEN, tolerance=0.05)

    def replica(self, node_id: int) -> Replica:
        return SlidingHLLReplica(node_id, self.config.session_timeout)
