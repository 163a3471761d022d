"""``orset``: an add-wins observed-remove set of online users, with leases and digest sync.

Data type. Every login adds a fresh, globally unique *tag* ``(replica, epoch, counter)``
for the user (``epoch`` is the time of the replica's first update, so a replica restarted
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
ignores such tag states when they arrive again: they are not counted anyway, so dropping
them changes no count, and it is a function of ``now`` and the state only (deterministic).
The margin keeps a removed tag's tombstone for a further timeout, so a late copy of the
tag's add or extension cannot bring it back. State is thus bounded by the tags of the last
two timeouts, not by history.

Sync: version digests, as in Scuttlebutt (van Renesse et al., 2008). Every change a replica
makes to a tag is an *update* numbered by its *writer*, the replica incarnation
``(replica, epoch)``: update ``n`` of writer ``w`` is the tag and its state after the
change. For every writer a replica keeps the latest update of each tag (a later update of a
tag by the same writer is never smaller) and ``known``: it holds every update of ``w``
numbered up to ``known`` (or a later one of the same tag, or it is garbage). ``sync(now)``
broadcasts one message: the replica's *digest* (``known`` per writer that still has a live
update here) and its own updates since its previous sync. A replica receiving it merges
those updates and answers the sender with every update it holds that the digest says the
sender lacks (an answer, possibly empty, goes back every time). So a replica pulls what it
misses from the peers it syncs with, a lost or cut message costs one more sync, and no
message ever carries the whole state: a sync is a digest of one entry per writer plus the
sender's own news, and an answer is the difference. A writer whose updates are all garbage
drops out of the digests, so churn does not grow them forever. Bodies are ``S`` or ``U``
and a :mod:`marshal` dump (Python's own format for tuples, strings and numbers: several
times faster than JSON with floats, and every replica is countbench on one Python).

Consistency: eventual. Replicas that have received the same updates agree, whatever the
order, delay or duplication of delivery; the count is of distinct users (a second login of
an online user does not count twice) and it forgets vanished users after the timeout.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable
from heapq import heapify, heappop, heappush
from typing import Any

from .base import Consistency, Message, Mode, Replica, ReplicatedStrategy
from .gcounter import remembering

#: (replica id, epoch, counter): unique over replicas and over their incarnations.
Tag = tuple[int, float, int]
#: (user, expiry, removed): the state of one tag.
TagState = tuple[str, float, bool]
#: ``"replica/epoch"``: one incarnation of a replica, the writer of its updates (a string:
#: its hash is computed once, and it is a JSON object key as it is).
Writer = str
#: An update as it travels: (tag replica, tag epoch, tag counter, user, expiry, removed,
#: update number).
Row = tuple[Any, ...]


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
        # (expiry, tag) for every expiry a tag has had here; stale once the tag's expiry rose
        self._expiring: list[tuple[float, Tag]] = []
        # The count: ``_alive`` holds user -> best expiry for every user whose best expiry
        # is at or after ``_at`` (the last time asked); ``_ends`` has (best expiry, user)
        # for each of them (and stale pairs), so time passing pops the users it ends.
        self._at = float("-inf")
        self._alive: dict[str, float] = {}
        self._ends: list[tuple[float, str]] = []
        for tag, state in tags:
            self.put(tag, state)

    # -- the lattice --------------------------------------------------------------------

    def put(self, tag: Tag, state: TagState) -> bool:
        """Join ``state`` into tag ``tag``; True when the tag's state changed."""
        old = self.tags.get(tag)
        if old is None:
            new = state
        else:
            new = join(old, state)
            if new == old:
                return False
        self.tags[tag] = new
        user = new[0]
        if old is None:
            heappush(self._expiring, (new[1], tag))
            tags = self._by_user.get(user)
            if tags is None:
                self._by_user[user] = {tag}
            else:
                tags.add(tag)
        elif new[1] > old[1]:
            heappush(self._expiring, (new[1], tag))
        if new[2]:
            if old is not None and not old[2]:
                self._refresh(user)
        else:
            best = self._best.get(user)
            if best is None or new[1] > best:
                self._best[user] = new[1]
                self._moved(user, new[1])
        return True

    def merge(self, other: ORSet) -> None:
        for tag in sorted(other.tags):
            self.put(tag, other.tags[tag])

    def expired_before(self, limit: float) -> list[Tag]:
        """The tags whose expiry is below ``limit``, sorted (each found in O(log n))."""
        expiring, tags = self._expiring, self.tags
        found = []
        while expiring and expiring[0][0] < limit:
            expiry, tag = heappop(expiring)
            state = tags.get(tag)
            if state is not None and state[1] == expiry:
                found.append(tag)
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
        expiries = [
            state[1]
            for state in (self.tags[tag] for tag in self._by_user.get(user, ()))
            if not state[2]
        ]
        if expiries:
            self._best[user] = best = max(expiries)
            self._moved(user, best)
        else:
            self._best.pop(user, None)
            self._moved(user, None)

    def _moved(self, user: str, best: float | None) -> None:
        """The user's best expiry is now ``best`` (None: no tag that is not removed)."""
        if best is not None and best >= self._at:
            if self._alive.get(user) != best:
                self._alive[user] = best
                heappush(self._ends, (best, user))
        else:
            self._alive.pop(user, None)

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
            if alive.get(user) == end:
                del alive[user]
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
    """One writer's updates as a replica holds them: the latest of each tag, in number order.

    ``known``: every update of the writer numbered up to it is held here, or a later update
    of the same tag is, or it is garbage. Updates above ``known`` may be held too (they
    arrived ahead of a gap); they are served, but ``known`` rises only over a gap-free
    range."""

    __slots__ = ("known", "latest", "top")

    def __init__(self) -> None:
        self.known = 0
        self.top = 0  # the highest number held or known
        self.latest: dict[Tag, Row] = {}  # in number order (a dict keeps insertion order)

    def add(self, tag: Tag, row: Row) -> None:
        """Hold ``row`` unless a later update of its tag is held already."""
        latest, number = self.latest, row[6]
        old = latest.get(tag)
        if old is not None:
            if old[6] >= number:
                return
            del latest[tag]  # re-inserted last
        if latest and next(reversed(latest.values()))[6] > number:  # behind a later one
            latest[tag] = row
            self.latest = dict(sorted(latest.items(), key=lambda item: item[1][6]))
        else:
            latest[tag] = row
        if number > self.top:
            self.top = number

    def advance(self, known: int) -> None:
        self.known = known
        if known > self.top:
            self.top = known

    def since(self, number: int, tags: dict[Tag, TagState] | None = None) -> list[Row]:
        """The held updates numbered above ``number``, in order; with ``tags``, only those
        of tags in it (otherwise a collected tag's updates too, until the next sweep:
        garbage wherever they arrive). Costs the updates it returns, not the log."""
        rows = []
        for tag, row in reversed(self.latest.items()):
            if row[6] <= number:
                break
            if tags is None or tag in tags:
                rows.append(row)
        rows.reverse()
        return rows

    def sweep(self, tags: dict[Tag, TagState]) -> None:
        """Forget the updates of tags no longer in ``tags`` (garbage collected)."""
        self.latest = {t: row for t, row in self.latest.items() if t in tags}


#: A chunk of updates as it travels: [writer, from, to, rows]: every update of the writer
#: numbered in (from, to] is in rows, or superseded, or garbage (rows may hold later ones).
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
        self.tops: dict[Writer, int] = {}  # each log's ``top``, for a quick answer
        self.epoch: float | None = None
        self.writer = ""  # set with the epoch, at the first update
        self.counter = 0  # tags added by this incarnation
        self.number = 0  # updates made by this incarnation
        self.pushed = 0  # of those, the ones a sync already sent
        self.swept = 0  # which writer log the next sync sweeps
        self._digest: dict[Writer, int] | None = None

    # -- updates --------------------------------------------------------------------------

    def _writer(self, now: float) -> Writer:
        if self.epoch is None:
            self.epoch = now
            self.writer = f"{self.node_id}/{now!r}"
        return self.writer

    def _record(self, tag: Tag, now: float) -> None:
        """Number the change this incarnation just made to ``tag``."""
        writer = self._writer(now)
        self.number += 1
        user, expiry, removed = self.state.tags[tag]
        row = (*tag, user, expiry, removed, self.number)
        log = self.logs.get(writer)
        if log is None:
            log = self.logs[writer] = WriterLog()
        log.add(tag, row)
        log.advance(self.number)
        self.tops[writer] = self.number
        self._digest = None

    def _add(self, user: str, now: float) -> None:
        self._writer(now)
        assert self.epoch is not None
        self.counter += 1
        tag = (self.node_id, self.epoch, self.counter)
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
        """Drop the tags past their expiry by more than a timeout; return how many."""
        dropped = self.state.expired_before(now - self.timeout)
        for tag in dropped:
            self.state.drop(tag)
        return len(dropped)

    def _sweep_one(self) -> None:
        """Sweep one writer log (in turn), dropping it when nothing live is left of it."""
        if not self.logs:
            return
        writers = list(self.logs)
        writer = writers[self.swept % len(writers)]
        self.swept += 1
        log = self.logs[writer]
        log.sweep(self.state.tags)
        self._digest = None
        if not log.latest and writer != self.writer:
            del self.logs[writer], self.tops[writer]

    # -- sync -----------------------------------------------------------------------------

    def digest(self) -> dict[Writer, int]:
        """``{writer: known}`` for every writer with a live update here (not to be changed)."""
        if self._digest is None:
            self._digest = {w: log.known for w, log in self.logs.items() if log.latest}
        return self._digest

    def sync(self, now: float) -> list[Message]:
        self.collect(now)
        self._sweep_one()
        chunks: list[Chunk] = []
        if self.number > self.pushed:
            rows = self.logs[self.writer].since(self.pushed)
            chunks.append([self.writer, self.pushed, self.number, rows])
            self.pushed = self.number
        body = b"S" + marshal.dumps((self.digest(), chunks))
        return [Message(self.node_id, None, body, informs=False)]

    def receive(self, message: Message, now: float) -> list[Message]:
        body = message.body
        if body[:1] == b"U":
            for chunk in decode_answer(body):
                self._merge(chunk, now)
            return []
        digest, chunks = _received_sync(body)
        for chunk in chunks:
            self._merge(chunk, now)
        return [Message(self.node_id, message.src, b"U" + self._answer(digest))]

    def _answer(self, digest: dict[Writer, int]) -> bytes:
        """The updates held here that ``digest`` says its replica lacks."""
        chunks: list[Chunk] = []
        get, logs = digest.get, self.logs
        for writer in [w for w, top in self.tops.items() if top > get(w, 0)]:
            log, have = logs[writer], get(writer, 0)
            # a replica that knows nothing of the writer may have collected all of it
            rows = log.since(have, None if have else self.state.tags)
            if rows or have:  # a writer it knows: the range alone lets its ``known`` rise
                chunks.append([writer, have, max(log.known, have), rows])
        return marshal.dumps(chunks)

    def _merge(self, chunk: Chunk, now: float) -> None:
        writer, start, end, rows = chunk
        log = self.logs.get(writer)
        known = 0 if log is None else log.known
        if end <= known and (not rows or rows[-1][6] <= known):
            return  # nothing new
        limit = now - self.timeout
        tags, put = self.state.tags, self.state.put
        for row in rows:
            number = row[6]
            if number <= known or row[4] < limit:  # held already; garbage stays out
                continue
            tag = (row[0], row[1], row[2])
            state = (row[3], row[4], row[5])
            if tags.get(tag) != state:
                put(tag, state)
            if log is None:
                log = self.logs[writer] = WriterLog()
                self._digest = None
            log.add(tag, row)
        if start <= known < end and log is not None:
            log.advance(end)
            self._digest = None
        if log is not None:
            self.tops[writer] = log.top


class ORSetStrategy(ReplicatedStrategy):
    name = "orset"
    summary = "Add-wins OR-set of online users with leases; sync by version digests."
    consistency = Consistency.EVENTUAL
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})

    def replica(self, node_id: int) -> Replica:
        return ORSetReplica(node_id, self.config.session_timeout)
