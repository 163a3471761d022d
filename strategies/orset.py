"""``orset``: an add-wins observed-remove set of online users, with leases and digest sync.

A login adds a unique tag; a logout removes the user's tags it has observed (a concurrent
login wins); a heartbeat extends the user's leases, so a user who vanishes stops being
counted after the session timeout. Replicas sync by version digests, as Scuttlebutt: a
digest plus the sender's news, answered with what the digest lacks. Consistency: eventual;
the count is of distinct users. The data type, leases, garbage, the sync protocol and why
leaving garbage out loses nothing: ``docs/orset.md``.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable
from heapq import heapify, heappop, heappush
from typing import Any

from .base import Message, Replica, ReplicatedStrategy
from .gcounter import remembering
from .spec import SESSIONS_HEARTBEAT_OPENS

#: (replica id, epoch, counter): unique over replicas and over their incarnations.
Tag = tuple[int, float, int]
#: (user, expiry, removed): the state of one tag.
TagState = tuple[str, float, bool]
#: ``"replica/epoch"``: one incarnation of a replica, the writer of its updates.
Writer = str
#: An update as it travels: (tag, the state the writer's update gave it, its number).
Row = tuple[Tag, TagState, int]


def join(a: TagState, b: TagState) -> TagState:
    """The least upper bound of two states of one tag."""
    user = a[0] if a[0] <= b[0] else b[0]  # equal for well-formed tags; min keeps it a join
    return (user, a[1] if a[1] >= b[1] else b[1], a[2] or b[2])


class ORSet:
    """Tag -> (user, expiry, removed), with per-user indexes for a fast count."""

    __slots__ = ("_alive", "_at", "_best", "_by_user", "_ends", "_expiring", "tags")

    def __init__(self, tags: Iterable[tuple[Tag, TagState]] = ()) -> None:
        self.tags: dict[Tag, TagState] = {}
        self._by_user: dict[str, set[Tag]] = {}
        self._best: dict[str, float] = {}  # user -> latest expiry of a non-removed tag
        # (expiry, tag): for each tag, an entry no later than its expiry (see expired_before)
        self._expiring: list[tuple[float, Tag]] = []
        # The count: ``_alive`` holds user -> best expiry for every user whose best expiry
        # is at or after ``_at`` (the last time asked); ``_ends`` has an entry (end, user)
        # with end no later than that for each of them (and stale ones), so time passing
        # pops the users it may end; a user whose expiry rose meanwhile is pushed again.
        self._at = float("-inf")
        self._alive: dict[str, float] = {}
        self._ends: list[tuple[float, str]] = []
        for tag, state in tags:
            self.put(tag, state)

    # -- the lattice --------------------------------------------------------------------

    def put(self, tag: Tag, state: TagState) -> bool:
        """Join ``state`` into tag ``tag``; True when the tag's state changed."""
        tags = self.tags
        old = tags.get(tag)
        if old is None:
            new = tags[tag] = state
            user = state[0]
            heappush(self._expiring, (state[1], tag))
            held = self._by_user.get(user)
            if held is None:
                self._by_user[user] = {tag}
            else:
                held.add(tag)
            if state[2]:
                return True
        else:
            new = join(old, state)
            if new == old:
                return False
            tags[tag] = new
            user = new[0]
            if new[2]:
                if not old[2]:
                    self._refresh(user)
                return True
        best = self._best.get(user)
        if best is None or new[1] > best:
            self._best[user] = new[1]
            if new[1] >= self._at:
                if self._alive.get(user) is None:
                    heappush(self._ends, (new[1], user))
                self._alive[user] = new[1]  # a rise: the user's earlier entry in _ends stays
        return True

    def merge(self, other: ORSet) -> None:
        for tag in sorted(other.tags):
            self.put(tag, other.tags[tag])

    def expired_before(self, limit: float) -> list[Tag]:
        """The tags whose expiry is below ``limit``, sorted. ``_expiring`` holds, for each
        tag, an entry no later than its expiry: a tag whose expiry rose since its entry was
        pushed is pushed again when the entry comes up, so an extension costs no push."""
        expiring, tags = self._expiring, self.tags
        found = set()
        while expiring and expiring[0][0] < limit:
            expiry, tag = heappop(expiring)
            state = tags.get(tag)
            if state is None:
                continue
            if state[1] < limit:
                found.add(tag)
            elif state[1] > expiry:
                heappush(expiring, (state[1], tag))
        return sorted(found)

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
        """The user lost a tag that was not removed: its best expiry may fall."""
        expiries = [
            state[1]
            for state in (self.tags[tag] for tag in self._by_user.get(user, ()))
            if not state[2]
        ]
        if not expiries:
            self._best.pop(user, None)
            self._alive.pop(user, None)
            return
        self._best[user] = best = max(expiries)
        if best < self._at:
            self._alive.pop(user, None)
        elif self._alive.get(user) != best:
            self._alive[user] = best
            heappush(self._ends, (best, user))  # a fall needs an entry no later than it

    def trim(self) -> None:
        """Rebuild ``_ends`` when stale entries dominate it (only ``value`` pops them, so a
        replica that is never asked its count would grow it with every session)."""
        if len(self._ends) > 2 * len(self._alive) + 64:
            self._ends = [(end, user) for user, end in self._alive.items()]
            heapify(self._ends)

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
        """How many users have a tag neither removed nor expired at ``now``."""
        alive = self._alive
        if now < self._at:  # asked about an earlier time: index again
            self._alive = alive = {u: e for u, e in self._best.items() if e >= now}
            self._ends = [(e, u) for u, e in alive.items()]
            heapify(self._ends)
        self._at = now
        ends = self._ends
        while ends and ends[0][0] < now:
            end, user = heappop(ends)
            best = alive.get(user)
            if best is None:
                continue
            if best < now:
                del alive[user]
            elif best > end:
                heappush(ends, (best, user))
        return len(alive)

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


class WriterLog:
    """One writer's updates as a replica holds them: for each tag, the writer's latest
    update of it (its number and the state it carried), in number order.

    Every number held is at most ``known``: updates arrive for the log only in gap-free
    ranges, so a new one is always the highest, and the dict's insertion order is number
    order. An update is served with the state it carried, not the larger one this replica
    may hold now: what a replica adds to it is published as the replica's own update, and
    travels under its own number."""

    __slots__ = ("known", "latest")

    def __init__(self) -> None:
        self.known = 0
        self.latest: dict[Tag, tuple[int, TagState]] = {}

    def add(self, tag: Tag, number: int, state: TagState) -> None:
        """Hold update ``number``, above every number held, as ``tag``'s latest."""
        latest = self.latest
        latest.pop(tag, None)
        latest[tag] = (number, state)

    def since(self, number: int, limit: float) -> list[Row]:
        """``(tag, state, number)`` for each update held numbered above ``number``, in
        number order, leaving out those whose state is garbage by ``limit``. (Their tags
        are all held: a replica drops a tag only once its joined state, at least as large
        as any update's, is garbage.) Costs the updates above ``number``, not the log."""
        rows = []
        for tag, (held, state) in reversed(self.latest.items()):
            if held <= number:
                break
            if state[1] >= limit:
                rows.append((tag, state, held))
        rows.reverse()
        return rows

    def sweep(self, limit: float) -> None:
        """Forget the updates whose state is garbage by ``limit``."""
        self.latest = {tag: entry for tag, entry in self.latest.items() if entry[1][1] >= limit}


#: A range of updates as it travels: [writer, from, to, rows]: every update of the writer
#: numbered in (from, to] is in rows, superseded by one in rows, or garbage.
Chunk = list[Any]


def decode_sync(body: bytes) -> tuple[dict[Writer, int], list[Chunk]]:
    """A sync's digest and chunks (``S`` then, marshalled, the pair)."""
    digest, chunks = marshal.loads(body[1:])
    return digest, chunks


def decode_answer(body: bytes) -> list[Chunk]:
    """An answer's chunks (``U`` then, marshalled, the list)."""
    chunks: list[Chunk] = marshal.loads(body[1:])
    return chunks


#: decode for ``receive``: a sync is broadcast, so its parse is shared, never to be changed.
_received_sync = remembering(decode_sync)


class ORSetReplica:
    """One node: an :class:`ORSet` with leases, and the updates it holds per writer."""

    def __init__(self, node_id: int, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("the session timeout must be positive")
        self.node_id = node_id
        self.timeout = timeout
        self.state = ORSet()
        self.logs: dict[Writer, WriterLog] = {}
        self.knowns: dict[Writer, int] = {}  # each log's ``known``
        self.epoch: float | None = None
        self.writer = ""  # set with the epoch, at the first update
        self.counter = 0  # tags added by this incarnation
        self.number = 0  # updates made by this incarnation
        self.pushed = 0  # of those, the ones a sync already sent
        self.swept = 0  # which writer log the next sync sweeps

    # -- updates --------------------------------------------------------------------------

    def _begin(self, now: float) -> float:
        """This incarnation's epoch (the time of its first update)."""
        if self.epoch is None:
            self.epoch = now
            self.writer = f"{self.node_id}/{now!r}"
        return self.epoch

    def _record(self, tag: Tag, now: float) -> None:
        """Publish the tag's state here as this incarnation's next update."""
        self._begin(now)
        self.number += 1
        log = self.logs.get(self.writer)
        if log is None:
            log = self.logs[self.writer] = WriterLog()
        log.add(tag, self.number, self.state.tags[tag])
        log.known = self.knowns[self.writer] = self.number

    def _add(self, user: str, now: float) -> None:
        self.counter += 1
        tag = (self.node_id, self._begin(now), self.counter)
        self.state.put(tag, (user, now + self.timeout, False))
        self._record(tag, now)

    def _set(self, tag: Tag, state: TagState, now: float) -> None:
        if self.state.put(tag, state):
            self._record(tag, now)

    def login(self, user: str, now: float) -> None:
        self._add(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        live = self.state.live(user, now)
        if not live:
            self._add(user, now)
            return
        for tag in live:
            self._set(tag, (user, now + self.timeout, False), now)

    def logout(self, user: str, now: float) -> None:
        for tag in self.state.observed(user):
            _, expiry, _ = self.state.tags[tag]
            self._set(tag, (user, expiry, True), now)

    def count(self, now: float) -> int:
        return self.state.value(now)

    # -- garbage --------------------------------------------------------------------------

    def collect(self, now: float) -> int:
        """Drop the tags whose joined state is garbage; return how many."""
        dropped = self.state.expired_before(now - self.timeout)
        for tag in dropped:
            self.state.drop(tag)
        self.state.trim()
        return len(dropped)

    def _sweep_one(self, now: float) -> None:
        """Sweep one writer log (in turn); forget another writer once nothing of it is left."""
        if not self.logs:
            return
        writers = list(self.logs)
        writer = writers[self.swept % len(writers)]
        self.swept += 1
        log = self.logs[writer]
        log.sweep(now - self.timeout)
        if not log.latest and writer != self.writer:
            del self.logs[writer], self.knowns[writer]

    # -- sync -----------------------------------------------------------------------------

    def sync(self, now: float) -> list[Message]:
        self.collect(now)
        self._sweep_one(now)
        chunks: list[Chunk] = []
        if self.number > self.pushed:
            rows = self.logs[self.writer].since(self.pushed, now - self.timeout)
            chunks.append([self.writer, self.pushed, self.number, rows])
            self.pushed = self.number
        body = b"S" + marshal.dumps((self.knowns, chunks))
        return [Message(self.node_id, None, body, informs=False)]

    def receive(self, message: Message, now: float) -> list[Message]:
        body = message.body
        if body[:1] == b"U":
            knowns = self.knowns
            for chunk in decode_answer(body):
                if chunk[2] > knowns.get(chunk[0], 0):  # news in it
                    self._merge(chunk, now)
            return []
        digest, chunks = _received_sync(body)
        knowns = self.knowns
        for chunk in chunks:
            if chunk[2] > knowns.get(chunk[0], 0):
                self._merge(chunk, now)
        return [Message(self.node_id, message.src, b"U" + self._answer(digest, now))]

    def _answer(self, digest: dict[Writer, int], now: float) -> bytes:
        """The updates held here that ``digest`` says its replica lacks."""
        chunks: list[Chunk] = []
        get, limit = digest.get, now - self.timeout
        for writer, known in sorted(self.knowns.items() - digest.items()):
            have = get(writer, 0)
            if known > have:
                rows = self.logs[writer].since(have, limit)
                if rows or have:  # a writer it knows: the range alone lets its known rise
                    chunks.append([writer, have, known, rows])
        return marshal.dumps(chunks)

    def _merge(self, chunk: Chunk, now: float) -> None:
        writer, start, end, rows = chunk
        log = self.logs.get(writer)
        known = 0 if log is None else log.known
        if end <= known or start > known:
            # Every update in it has been here; or a range with a gap before it (a push
            # that missed this replica before), left to the next digest to pull whole:
            # merged unlogged, its states would be served by no log here, and lost for good
            # if their writer restarted empty.
            return
        if log is None:
            log = self.logs[writer] = WriterLog()
        latest = log.latest
        limit = now - self.timeout
        tags, put = self.state.tags, self.state.put
        republish = []
        for tag, state, number in rows:
            if number <= known:
                continue
            held = tags.get(tag)
            if held is None:
                if state[1] < limit:
                    continue  # garbage, and nothing here to join it with
                put(tag, state)
            elif held != state:
                if held[1] < limit and state[1] < limit:
                    continue  # the join would be garbage: the next collect drops the tag
                if put(tag, state) and tags[tag] != state:
                    republish.append(tag)  # a state no update holds yet
            if state[1] >= limit:
                latest.pop(tag, None)  # WriterLog.add, inline
                latest[tag] = (number, state)
        log.known = self.knowns[writer] = end
        for tag in republish:
            self._record(tag, now)


class ORSetStrategy(ReplicatedStrategy):
    name = "orset"
    summary = "Add-wins OR-set of online users with leases; sync by version digests."
    specification = SESSIONS_HEARTBEAT_OPENS

    def replica(self, node_id: int) -> Replica:
        return ORSetReplica(node_id, self.config.session_timeout)
