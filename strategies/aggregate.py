"""``aggregate``: aggregate on demand. Each node counts only its own sessions; a read asks
every node at once and sums the answers.

Each node is a real server process on loopback (the central service's server, one per
node, each with its own session table). Worker ``w`` logs its users in and out on node
``w % nodes``; a read sends a count request to every node before reading any answer, and
a node that has not answered within ``READ_TIMEOUT`` seconds (or the request timeout, if
shorter) is left out: the read is then
*partial* (counted in the node's statistics, which reach the report) and that connection
is reopened at the next read. Consistency: eventual; a read is not a snapshot (nodes
answer at slightly different moments) and a partial read under-counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import AsyncClientNode, ClientNode, Consistency, Mode, ServiceStrategy, StrategyConfig

if TYPE_CHECKING:
    from ..bench.servers.central import AsyncCentralClient, CentralClient

READ_TIMEOUT = 2.0
CONNECT_TIMEOUT = 10.0


def node_addresses(endpoint: str) -> list[tuple[str, int]]:
    """``nodes://HOST:PORT,HOST:PORT,...`` -> [(host, port), ...]."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "nodes" or not rest:
        raise ValueError(f"not a node cluster URL: {endpoint!r}")
    addresses = []
    for part in rest.split(","):
        host, _, port = part.rpartition(":")
        addresses.append((host, int(port)))
    return addresses


@dataclass
class ReadStats:
    """What a node's reads saw: how many, how many partial, how old (eventual)."""

    reads: int = 0
    partial_reads: int = 0
    staleness_sum: float = 0.0
    staleness_max: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "reads": self.reads,
            "partial_reads": self.partial_reads,
            "staleness_sum_s": self.staleness_sum,
            "staleness_max_s": self.staleness_max,
        }


class NodeCluster:
    """A worker's connections to every node, with its home node's batching."""

    def __init__(
        self,
        endpoint: str,
        namespace: str,
        worker: int,
        depth: int,
        timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self.addresses = node_addresses(endpoint)
        self.namespace = namespace
        self.clients: list[CentralClient | None] = [self._connect(a) for a in self.addresses]
        self.home = worker % len(self.addresses)
        self.depth = depth
        self.pending: list[tuple[str, str, float]] = []
        self.stats = ReadStats()

    @classmethod
    def of(cls, config: StrategyConfig, namespace: str, worker: int) -> NodeCluster:
        """Worker ``worker``'s connections to the nodes of ``config.endpoint``."""
        endpoint, depth, timeout = config.endpoint, config.pipeline, config.request_timeout
        return cls(endpoint, namespace, worker, depth, timeout)

    def _connect(self, address: tuple[str, int]) -> CentralClient | None:
        from ..bench.servers.central import CentralClient, CentralServiceError

        try:
            return CentralClient(*address, self.namespace, timeout=self.timeout)
        except CentralServiceError:
            return None

    def _home(self) -> CentralClient:
        from ..bench.servers.central import CentralServiceError

        client = self.clients[self.home]
        if client is None or client.closed:
            client = self.clients[self.home] = self._connect(self.addresses[self.home])
        if client is None:
            raise CentralServiceError(f"node {self.home} is unreachable")
        return client

    def send(self, kind: str, user: str, now: float) -> None:
        self.pending.append((kind, user, now))
        if len(self.pending) >= self.depth:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, []
            self._home().pipeline(pending)

    def total(self, now: float) -> int:
        """Sum of every node's count, asked of all at once; a partial read if some node
        does not answer in time."""
        from ..bench.servers.central import fan_out_count

        self.flush()
        for i, client in enumerate(self.clients):
            if client is None or client.closed:
                self.clients[i] = self._connect(self.addresses[i])
        live = [c for c in self.clients if c is not None]
        answers = fan_out_count(live, now, min(READ_TIMEOUT, self.timeout))
        if len(live) < len(self.clients) or None in answers:
            self.stats.partial_reads += 1
        return sum(a for a in answers if a is not None)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for client in self.clients:
                if client is not None:
                    client.close()


class AggregateClientNode:
    """Writes to the home node, reads from all nodes."""

    def __init__(self, cluster: NodeCluster) -> None:
        self.cluster = cluster

    def login(self, user: str, now: float) -> None:
        self.cluster.send("login", user, now)

    def logout(self, user: str, now: float) -> None:
        self.cluster.send("logout", user, now)

    def heartbeat(self, user: str, now: float) -> None:
        self.cluster.send("heartbeat", user, now)

    def count(self, now: float) -> int:
        self.cluster.stats.reads += 1
        return self.cluster.total(now)

    def sync(self, now: float) -> None:
        self.cluster.flush()

    def stats(self) -> dict[str, float]:
        return self.cluster.stats.as_dict()

    def close(self) -> None:
        self.cluster.close()


class AsyncNodeCluster:
    """The asyncio twin of :class:`NodeCluster` (reads gather every node's answer)."""

    def __init__(
        self, namespace: str, worker: int, depth: int, timeout: float = CONNECT_TIMEOUT
    ) -> None:
        self.timeout = timeout
        self.namespace, self.worker, self.depth = namespace, worker, depth
        self.addresses: list[tuple[str, int]] = []
        self.clients: list[AsyncCentralClient | None] = []
        self.pending: list[tuple[str, str, float]] = []
        self.stats = ReadStats()

    @classmethod
    async def of(cls, config: StrategyConfig, namespace: str, worker: int) -> AsyncNodeCluster:
        """Worker ``worker``'s connected cluster (see :meth:`NodeCluster.of`)."""
        cluster = cls(namespace, worker, config.pipeline, config.request_timeout)
        return await cluster.connect(config.endpoint)

    async def connect(self, endpoint: str) -> AsyncNodeCluster:
        self.addresses = node_addresses(endpoint)
        self.clients = [await self._connect(a) for a in self.addresses]
        return self

    async def _connect(self, address: tuple[str, int]) -> AsyncCentralClient | None:
        from ..bench.servers.central import AsyncCentralClient, CentralServiceError

        try:
            return await AsyncCentralClient.open(*address, self.namespace, self.timeout)
        except CentralServiceError:
            return None

    async def send(self, kind: str, user: str, now: float) -> None:
        self.pending.append((kind, user, now))
        if len(self.pending) >= self.depth:
            await self.flush()

    async def flush(self) -> None:
        from ..bench.servers.central import CentralServiceError

        if not self.pending:
            return
        pending, self.pending = self.pending, []
        home = self.worker % len(self.addresses)
        client = self.clients[home]
        if client is None or client.closed:
            client = self.clients[home] = await self._connect(self.addresses[home])
        if client is None:
            raise CentralServiceError(f"node {home} is unreachable")
        await client.pipeline(pending)

    async def _count(self, index: int, now: float) -> int | None:
        import asyncio

        client = self.clients[index]
        if client is None or client.closed:
            client = self.clients[index] = await self._connect(self.addresses[index])
        if client is None:
            return None
        try:
            return await asyncio.wait_for(client.count(now), min(READ_TIMEOUT, self.timeout))
        except Exception:  # timed out or lost: leave it out, reopen it next time
            await client.close()
            return None

    async def total(self, now: float) -> int:
        import asyncio

        await self.flush()
        answers = await asyncio.gather(*(self._count(i, now) for i in range(len(self.clients))))
        if None in answers:
            self.stats.partial_reads += 1
        return sum(a for a in answers if a is not None)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            for client in self.clients:
                if client is not None:
                    await client.close()


class AsyncAggregateClientNode:
    def __init__(self, cluster: AsyncNodeCluster) -> None:
        self.cluster = cluster

    async def login(self, user: str, now: float) -> None:
        await self.cluster.send("login", user, now)

    async def logout(self, user: str, now: float) -> None:
        await self.cluster.send("logout", user, now)

    async def heartbeat(self, user: str, now: float) -> None:
        await self.cluster.send("heartbeat", user, now)

    async def count(self, now: float) -> int:
        self.cluster.stats.reads += 1
        return await self.cluster.total(now)

    async def sync(self, now: float) -> None:
        await self.cluster.flush()

    def stats(self) -> dict[str, float]:
        return self.cluster.stats.as_dict()

    async def close(self) -> None:
        await self.cluster.close()


class AggregateOnDemand(ServiceStrategy):
    name = "aggregate"
    summary = "Each node server counts its own sessions; a read asks all nodes at once and sums."
    consistency = Consistency.EVENTUAL
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})
    article_approach = "Aggregate on demand"
    service = "nodes"

    def client(self, namespace: str, worker: int) -> ClientNode:
        return AggregateClientNode(NodeCluster.of(self.config, namespace, worker))

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        return AsyncAggregateClientNode(await AsyncNodeCluster.of(self.config, namespace, worker))
