"""``orset``: an add-wins observed-remove set of online users, with leases and delta sync.

Data type. Every login adds a fresh, globally unique *tag* ``(replica, epoch, counter)``
for the user (``epoch`` is the time of the replica's first tag, so a replica restarted
without its state never reuses an old tag). A tag's state is ``(user, expiry, removed)``;
two states of one tag merge to ``(user, max expiry, removed or removed)``, and two sets
merge tag by tag (a tag missing on one side takes the other side's state). That is a join
semilattice: merge is commutative, associative and idempotent. A logout marks removed every
tag of the user this replica has *observed*; a login concurrent with it adds a tag the
logout did not see, so the add wins. ``count(now)`` is the number of users with at least
one tag that is not removed and whose lease has not run out (``expiry >= now``).

Leases. A tag expires ``session_timeout`` after it was added or last extended, so a user
who vanishes without logging out stops being counted once the timeout has passed (as in
``session``; online at exactly ``expiry``, offline just after). A heartbeat *extends*: it
raises the expiry of every live tag of the user this replica sees to ``now + timeout``
(expiry is a max-register, so an extension merges like any other change and costs no new
tag). A heartbeat for a user with no live tag here (a replica restarted empty, or one that
missed the user's session while it was down) adds a fresh tag: a heartbeat is proof of
presence. A logout concurrent with a heartbeat at another replica wins over that heartbeat
(the heartbeat extended observed tags, it added none).

Garbage collection. At every ``sync(now)`` a replica drops every tag, removed or not, whose
expiry is more than ``session_timeout`` in the past (``expiry + timeout < now``), and it
ignores such tags when they arrive again: they are not counted anyway, so dropping them
changes no count, and it is a function of ``now`` and the state only (deterministic). The
margin keeps a removed tag's tombstone for a further timeout, so a late copy of the tag's
add or extension cannot bring it back. State is thus bounded by the tags of the last two
timeouts, not by history.

Delta sync. ``sync(now)`` broadcasts the tags this replica changed since its previous sync
(adds, extensions and removals, each as the tag's current state), or nothing when none
changed; every ``full_every`` syncs (the first included) it broadcasts its whole state
instead, so a replica that lost deltas (loss, partition, a restart without state)
converges within ``full_every`` syncs of hearing from every other replica again. Received
tags are merged and not forwarded.

Consistency: eventual. Replicas that have received the same tags agree, whatever the order,
delay or duplication of delivery; the count is of distinct users (a second login of an
online user does not count twice) and it forgets vanished users after the timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .base import Consistency, Message, Mode, Replica, ReplicatedStrategy
from .gcounter import remembering

#: (replica id, epoch, counter): unique over replicas and over their incarnations.
Tag = tuple[int, float, int]
#: (user, expiry, removed): the state of one tag.
TagState = tuple[str, float, bool]


def join(a: TagState, b: TagState) -> TagState:
    """The least upper bound of two states of one tag."""
    user = a[0] if a[0] <= b[0] else b[0]  # equal for well-formed tags; min keeps it a join
    return (user, a[1] if a[1] >= b[1] else b[1], a[2] or b[2])


class ORSet:
    """Tag -> (user, expiry, removed), with per-user indexes for a fast count."""

    __slots__ = ("_best", "_by_user", "_counted", "tags")

    def __init__(self, tags: Iterable[tuple[Tag, TagState]] = ()) -> None:
        self.tags: dict[Tag, TagState] = {}
        self._by_user: dict[str, set[Tag]] = {}
        self._best: dict[str, float] = {}  # user -> latest expiry of a non-removed tag
        # (since, until, value): value(now) for since <= now <= until, until ``_best``
        # changes (``until`` is the earliest expiry at or after ``since``)
        self._counted: tuple[float, float, int] | None = None
        for tag, state in tags:
            self.put(tag, state)

    # -- the lattice --------------------------------------------------------------------

    def put(self, tag: Tag, state: TagState) -> bool:
        """Join ``state`` into tag ``tag``; True when the tag's state changed."""
        old = self.tags.get(tag)
        new = state if old is None else join(old, state)
        if new == old:
            return False
        self.tags[tag] = new
        user = new[0]
        self._by_user.setdefault(user, set()).add(tag)
        if new[2]:
            if old is not None and not old[2]:
                self._refresh(user)
        elif new[1] > self._best.get(user, float("-inf")):
            self._best[user] = new[1]
            self._counted = None
        return True

    def merge(self, other: ORSet) -> None:
        for tag in sorted(other.tags):
            self.put(tag, other.tags[tag])

    def drop(self, tag: Tag) -> None:
        """Forget a tag altogether (garbage collection)."""
        state = self.tags.pop(tag)
        user = state[0]
        tags = self._by_user[user]
        tags.discard(tag)
        if not tags:
            del self._by_user[user]
        self._refresh(user)

    def _refresh(self, user: str) -> None:
        expiries = [
            state[1]
            for state in (self.tags[tag] for tag in self._by_user.get(user, ()))
            if not state[2]
        ]
        if expiries:
            self._best[user] = max(expiries)
        else:
            self._best.pop(user, None)
        self._counted = None

    # -- queries ------------------------------------------------------------------------

    def live(self, user: str, now: float) -> list[Tag]:
        """The user's tags that are neither removed nor expired at ``now``, sorted."""
        return sorted(
            tag
            for tag in self._by_user.get(user, ())
            if not self.tags[tag][2] and self.tags[tag][1] >= now
        )

    def observed(self, user: str) -> list[Tag]:
        """Every tag of the user not removed yet (expired ones included), sorted."""
        return sorted(tag for tag in self._by_user.get(user, ()) if not self.tags[tag][2])

    def value(self, now: float) -> int:
        counted = self._counted
        if counted is not None and counted[0] <= now <= counted[1]:
            return counted[2]
        live = [expiry for expiry in self._best.values() if expiry >= now]
        self._counted = (now, min(live, default=float("inf")), len(live))
        return len(live)

    def users(self, now: float) -> list[str]:
        return sorted(user for user, expiry in self._best.items() if expiry >= now)

    def items(self) -> list[tuple[Tag, TagState]]:
        return sorted(self.tags.items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ORSet):
            return NotImplemented
        return self.tags == other.tags

    def __repr__(self) -> str:
        return f"ORSet({self.items()})"

    def copy(self) -> ORSet:
        return ORSet(self.items())


def encode(entries: Iterable[tuple[Tag, TagState]], full: bool) -> bytes:
    rows = [
        [tag[0], tag[1], tag[2], user, expiry, int(removed)]
        for tag, (user, expiry, removed) in sorted(entries)
    ]
    return json.dumps({"f": int(full), "t": rows}, separators=(",", ":")).encode()


def decode(body: bytes) -> tuple[bool, list[tuple[Tag, TagState]]]:
    data: dict[str, Any] = json.loads(body)
    entries: list[tuple[Tag, TagState]] = [
        ((int(node), float(epoch), int(counter)), (str(user), float(expiry), bool(removed)))
        for node, epoch, counter, user, expiry, removed in data["t"]
    ]
    return bool(data["f"]), entries


#: decode for ``receive``: its answer is shared, never to be changed.
_received = remembering(decode)


class ORSetReplica:
    """One node: an :class:`ORSet` with leases, the tags changed since the last sync, and
    a sync counter that decides when the whole state goes out."""

    def __init__(self, node_id: int, timeout: float, full_every: int = 4) -> None:
        if timeout <= 0:
            raise ValueError("the session timeout must be positive")
        if full_every < 1:
            raise ValueError("full_every must be at least 1")
        self.node_id = node_id
        self.timeout = timeout
        self.full_every = full_every
        self.state = ORSet()
        self.changed: set[Tag] = set()
        self.epoch: float | None = None
        self.counter = 0
        self.syncs = 0

    def _add(self, user: str, now: float) -> None:
        if self.epoch is None:
            self.epoch = now
        self.counter += 1
        tag = (self.node_id, self.epoch, self.counter)
        self.state.put(tag, (user, now + self.timeout, False))
        self.changed.add(tag)

    def _set(self, tag: Tag, state: TagState) -> None:
        if self.state.put(tag, state):
            self.changed.add(tag)

    def login(self, user: str, now: float) -> None:
        self._add(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        live = self.state.live(user, now)
        if not live:
            self._add(user, now)
            return
        for tag in live:
            self._set(tag, (user, now + self.timeout, False))

    def logout(self, user: str, now: float) -> None:
        for tag in self.state.observed(user):
            _, expiry, _ = self.state.tags[tag]
            self._set(tag, (user, expiry, True))

    def count(self, now: float) -> int:
        return self.state.value(now)

    def garbage(self, now: float) -> list[Tag]:
        """Tags past their expiry by more than a timeout, sorted."""
        limit = now - self.timeout
        return sorted(tag for tag, state in self.state.tags.items() if state[1] < limit)

    def collect(self, now: float) -> int:
        """Drop the garbage tags; return how many."""
        dropped = self.garbage(now)
        for tag in dropped:
            self.state.drop(tag)
            self.changed.discard(tag)
        return len(dropped)

    def sync(self, now: float) -> list[Message]:
        self.collect(now)
        full = self.syncs % self.full_every == 0
        self.syncs += 1
        tags = self.state.tags
        if full:
            entries = self.state.items()
        else:
            entries = [(tag, tags[tag]) for tag in sorted(self.changed) if tag in tags]
        self.changed.clear()
        if not entries and not full:
            return []
        return [Message(self.node_id, None, encode(entries, full))]

    def receive(self, message: Message, now: float) -> list[Message]:
        _full, entries = _received(message.body)
        limit = now - self.timeout
        tags, put = self.state.tags, self.state.put
        for tag, state in entries:
            if state[1] >= limit and tags.get(tag) != state:  # garbage stays out
                put(tag, state)
        return []


class ORSetStrategy(ReplicatedStrategy):
    name = "orset"
    summary = "Add-wins OR-set of online users with leases, delta sync and periodic full state."
    consistency = Consistency.EVENTUAL
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})

    def replica(self, node_id: int) -> Replica:
        return ORSetReplica(node_id, self.config.session_timeout)
