"""``vclock``: login/logout events ordered by vector clocks, per user, done correctly.

Every login and logout is an *event* stamped with a vector clock: the replica's actor
increments its own entry in the replica's clock and the event carries a copy of it. An
actor is one incarnation of a replica, ``"<node>@<epoch>"`` (``epoch``: the time of its
first event), so a replica restarted without its state starts a new entry instead of
re-issuing clock values its old incarnation already used (which would make its new events
look older than its old ones). A replica raises its clock to the element-wise maximum of
every event it receives, so its next event happens after everything it has seen.

Per user a replica keeps the *frontier*: the events of that user not dominated by another
known event (an antichain in the happens-before order). An arriving event dominated by or
equal to a frontier event is dropped (it is old, or a duplicate); otherwise it replaces the
frontier events it dominates. Frontiers merge by union-then-keep-maximal, a join
semilattice: commutative, associative and idempotent, so delivery order and duplication do
not matter. The user's effective state is that of the frontier's greatest event in the
complete order "happens-before, then (time, actor) among concurrent events": causality
always wins, and only truly concurrent events (a restarted replica's first events, one
user on two replicas at once) fall back to the later timestamp, ties broken by actor.
``count`` is the number of users whose effective state is online.

Sync: each ``sync`` broadcasts the events this replica originated since its previous sync;
every ``full_every`` syncs (the first included) the whole frontier map instead, so a
replica that lost events converges. Metadata is the point: each frontier event carries a
whole vector clock (one entry per actor ever seen), and the frontier of a user who logged
out stays as a tombstone (dropping it would let a late copy of the login back in), so the
state grows with users and actors; the simulator's metadata-bytes metric shows it.
Heartbeats are ignored (no leases): a vanished user stays counted, as in ``pncounter``.

Consistency: eventual. Replicas that received the same events hold the same frontiers and
the same count; a repeated login of an online user does not count twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .base import Message, ReplicatedStrategy
from .spec import MEMBERS

Clock = dict[str, int]


def leq(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """``a`` happened before or equals ``b``."""
    return all(b.get(actor, 0) >= value for actor, value in a.items())


class Event:
    """A login (``online``) or logout of one user, with its clock, time and actor."""

    __slots__ = ("actor", "clock", "online", "time")

    def __init__(self, clock: Mapping[str, int], online: bool, time: float, actor: str) -> None:
        self.clock: Clock = {a: v for a, v in clock.items() if v}
        self.online = online
        self.time = time
        self.actor = actor

    def key(self) -> tuple[tuple[tuple[str, int], ...], bool, float, str]:
        return (tuple(sorted(self.clock.items())), self.online, self.time, self.actor)

    def rank(self) -> tuple[float, str]:
        """The tie-break among concurrent events: later time, then greater actor."""
        return (self.time, self.actor)

    def to_json(self) -> list[Any]:
        return [dict(sorted(self.clock.items())), int(self.online), self.time, self.actor]

    @classmethod
    def from_json(cls, data: list[Any]) -> Event:
        clock, online, time, actor = data
        return cls({str(a): int(v) for a, v in clock.items()}, bool(online), float(time), actor)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        kind = "login" if self.online else "logout"
        return f"Event({kind}, {self.clock}, t={self.time}, {self.actor})"


class FrontierMap:
    """User -> the maximal events known for that user; tracks who is online."""

    __slots__ = ("frontiers", "online")

    def __init__(self) -> None:
        self.frontiers: dict[str, list[Event]] = {}
        self.online: set[str] = set()

    def add(self, user: str, event: Event) -> bool:
        """Join one event in; True when the user's frontier changed."""
        frontier = self.frontiers.get(user, [])
        if any(leq(event.clock, known.clock) for known in frontier):
            return False  # already known, or superseded
        kept = [known for known in frontier if not leq(known.clock, event.clock)]
        kept.append(event)
        kept.sort(key=Event.key)
        self.frontiers[user] = kept
        if max(kept, key=Event.rank).online:
            self.online.add(user)
        else:
            self.online.discard(user)
        return True

    def merge(self, other: FrontierMap) -> None:
        for user in sorted(other.frontiers):
            for event in other.frontiers[user]:
                self.add(user, event)

    def items(self) -> list[tuple[str, list[Event]]]:
        return sorted(self.frontiers.items())

    def copy(self) -> FrontierMap:
        other = FrontierMap()
        other.merge(self)
        return other

    def canonical(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        return [(user, [e.key() for e in events]) for user, events in self.items()]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrontierMap):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __repr__(self) -> str:
        return f"FrontierMap({self.items()})"


def encode(events: Iterable[tuple[str, Event]], full: bool) -> bytes:
    rows = [[user, *event.to_json()] for user, event in events]
    return json.dumps({"f": int(full), "e": rows}, separators=(",", ":")).encode()


def decode(body: bytes) -> list[tuple[str, Event]]:
    data: dict[str, Any] = json.loads(body)
    return [(str(row[0]), Event.from_json(row[1:])) for row in data["e"]]


class VClockReplica:
    """One node: its actor's vector clock, the frontier map, and its unsent events."""

    def __init__(self, node_id: int, full_every: int = 4) -> None:
        if full_every < 1:
            raise ValueError("full_every must be at least 1")
        self.node_id = node_id
        self.full_every = full_every
        self.actor: str | None = None
        self.clock: Clock = {}
        self.state = FrontierMap()
        self.outbox: list[tuple[str, Event]] = []
        self.syncs = 0

    def _event(self, user: str, online: bool, now: float) -> None:
        if self.actor is None:
            self.actor = f"{self.node_id}@{now!r}"
        self.clock[self.actor] = self.clock.get(self.actor, 0) + 1
        event = Event(self.clock, online, now, self.actor)
        self.state.add(user, event)
        self.outbox.append((user, event))

    def login(self, user: str, now: float) -> None:
        self._event(user, True, now)

    def logout(self, user: str, now: float) -> None:
        self._event(user, False, now)

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return len(self.state.online)

    def sync(self, now: float) -> list[Message]:
        full = self.syncs % self.full_every == 0
        self.syncs += 1
        if full:
            events = [(user, e) for user, frontier in self.state.items() for e in frontier]
        else:
            events = self.outbox
        self.outbox = []
        if not events and not full:
            return []
        return [Message(self.node_id, None, encode(events, full))]

    def receive(self, message: Message, now: float) -> list[Message]:
        clock = self.clock
        for user, event in decode(message.body):
            if self.state.add(user, event):
                for actor, value in event.clock.items():
                    if value > clock.get(actor, 0):
                        clock[actor] = value
        return []


class VClockStrategy(ReplicatedStrategy):
    name = "vclock"
    summary = "Per-user login/logout events ordered by vector clocks; concurrent: later wins."
    specification = MEMBERS
    replica_class = VClockReplica
