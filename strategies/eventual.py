"""``eventual``: each node counts locally; at every sync point a worker refreshes its
cached total from all nodes; a read returns the cached total at once, without a network
hop.

The nodes are the same loopback server processes as ``aggregate`` (one per node, each
with its own session table). Writes go to the worker's home node; the refresh asks every
node at once and sums (as ``aggregate``'s read does). A read is as old as the last
refresh: its age, ``now`` minus the refresh time in the workload's seconds, is the
staleness that the node's statistics carry to the report. Consistency: eventual (exact
right after a refresh, drifting until the next).
"""

from __future__ import annotations

from .aggregate import (
    AggregateClientNode,
    AsyncAggregateClientNode,
    AsyncNodeCluster,
    NodeCluster,
    ReadStats,
)
from .base import AsyncClientNode, ClientNode, Consistency, Mode, ServiceStrategy


class CachedTotal:
    """The last refreshed total and when it was taken; the staleness of each read."""

    def __init__(self) -> None:
        self.value = 0
        self.taken: float | None = None

    def read(self, now: float, stats: ReadStats) -> int:
        age = 0.0 if self.taken is None else max(now - self.taken, 0.0)
        stats.reads += 1
        stats.staleness_sum += age
        stats.staleness_max = max(stats.staleness_max, age)
        return self.value


class EventualClientNode(AggregateClientNode):
    """Writes to the home node like ``aggregate``; reads the cached total."""

    def __init__(self, cluster: NodeCluster) -> None:
        super().__init__(cluster)
        self.cache = CachedTotal()

    def count(self, now: float) -> int:
        if self.cache.taken is None:
            self.sync(now)
        return self.cache.read(now, self.cluster.stats)

    def sync(self, now: float) -> None:
        self.cache.value, self.cache.taken = self.cluster.total(now), now


class AsyncEventualClientNode(AsyncAggregateClientNode):
    def __init__(self, cluster: AsyncNodeCluster) -> None:
        super().__init__(cluster)
        self.cache = CachedTotal()

    async def count(self, now: float) -> int:
        if self.cache.taken is None:
            await self.sync(now)
        return self.cache.read(now, self.cluster.stats)

    async def sync(self, now: float) -> None:
        self.cache.value, self.cache.taken = await self.cluster.total(now), now


class EventualSync(ServiceStrategy):
    name = "eventual"
    summary = "Local counts on node servers; each worker reads a cached total refreshed at syncs."
    consistency = Consistency.EVENTUAL
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})
    service = "nodes"

    def client(self, namespace: str, worker: int) -> ClientNode:
        cluster = NodeCluster(self.config.endpoint, namespace, worker, self.config.pipeline)
        return EventualClientNode(cluster)

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        cluster = AsyncNodeCluster(namespace, worker, self.config.pipeline)
        return AsyncEventualClientNode(await cluster.connect(self.config.endpoint))
