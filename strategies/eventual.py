"""``eventual``: each node counts locally; at every sync point a worker refreshes its
cached total from all nodes; a read returns the cached total at once, without a network
hop.

The nodes are the same loopback server processes as ``aggregate-remote`` (one per node,
each with its own session table). Writes go to the worker's home node; the refresh asks
every node at once and sums (as ``aggregate``'s read does). A read is as old as the last
refresh: its age, ``now`` minus the refresh time in the workload's seconds, is the
staleness that the node's statistics carry to the report. Consistency: eventual (exact
right after a refresh, drifting until the next).

:class:`EventualReplica` is the same design as a sans-I/O state machine, for the fault
simulator: a node's own sessions, plus the last local count each other node announced
(newest by the sender's time wins, so reordered and duplicated announcements are
harmless). A read is its own count plus those; a node that crashes loses its sessions,
and the others learn its new, lower count at its next announcement.
"""

from __future__ import annotations

from .aggregate import (
    AggregateClientNode,
    AsyncAggregateClientNode,
    NodeServerStrategy,
    ReadStats,
)
from .base import (
    Message,
)
from .session import LocalSessions
from .spec import SESSIONS


class CachedTotal:
    """The last refreshed total and when it was taken; the staleness of each read."""

    def __init__(self, value: int, taken: float) -> None:
        self.value, self.taken = value, taken

    def read(self, now: float, stats: ReadStats) -> int:
        age = max(now - self.taken, 0.0)
        stats.reads += 1
        stats.staleness_sum += age
        stats.staleness_max = max(stats.staleness_max, age)
        return self.value


class EventualClientNode(AggregateClientNode):
    """Writes to the home node like ``aggregate-remote``; reads the cached total."""

    cache: CachedTotal | None = None

    def count(self, now: float) -> int:
        if self.cache is None:
            self.sync(now)
        assert self.cache is not None
        return self.cache.read(now, self.read_stats)

    def sync(self, now: float) -> None:
        self.cache = CachedTotal(self.total(now), now)


class AsyncEventualClientNode(AsyncAggregateClientNode):
    cache: CachedTotal | None = None

    async def count(self, now: float) -> int:
        if self.cache is None:
            await self.sync(now)
        assert self.cache is not None
        return self.cache.read(now, self.read_stats)

    async def sync(self, now: float) -> None:
        self.cache = CachedTotal(await self.total(now), now)


class EventualReplica(LocalSessions):
    """One node of ``eventual`` for the simulator (see the module docstring)."""

    def __init__(self, node_id: int, timeout: float) -> None:
        super().__init__(node_id, timeout)
        self.others: dict[int, tuple[float, int]] = {}  # node -> (announced at, count)

    def count(self, now: float) -> int:
        return self.sessions.count(now) + sum(count for _, count in self.others.values())

    def sync(self, now: float) -> list[Message]:
        body = f"{now!r} {self.sessions.count(now)}".encode("ascii")
        return [Message(self.node_id, None, body)]

    def receive(self, message: Message, now: float) -> list[Message]:
        at_text, count_text = message.body.decode("ascii").split()
        at, count = float(at_text), int(count_text)
        known = self.others.get(message.src)
        if message.src != self.node_id and (known is None or at > known[0]):
            self.others[message.src] = (at, count)
        return []


class EventualSync(NodeServerStrategy):
    name = "eventual"
    summary = "Local counts on node servers; each worker reads a cached total refreshed at syncs."
    specification = SESSIONS
    blocking = EventualClientNode
    asynchronous = AsyncEventualClientNode

    def replica(self, node_id: int) -> EventualReplica:
        """The design's twin for the fault simulator (see the module docstring)."""
        return EventualReplica(node_id, self.config.session_timeout)
