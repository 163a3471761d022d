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

:class:`AggregateReplica` is the same design as a sans-I/O state machine for the fault
simulator (a :class:`~.base.RequestReplica`): a node holds only its own sessions; a read
at node i counts its own at once and sends a count request to every other node, and sums
the answers that arrive within ``READ_TIMEOUT`` (virtual) seconds; a node that has not
answered by then is left out (a partial read). Writes are local: the node's own table.
A node that crashes without its state loses its sessions (the users' heartbeats do not
bring them back: a heartbeat of an unknown user is ignored, as in the real server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import (
    Answer,
    AsyncClientNode,
    ClientNode,
    Consistency,
    Message,
    Mode,
    ServiceStrategy,
    StrategyConfig,
)
from .session import LocalSessions, apply
from .spec import SESSIONS

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


class PendingRead:
    """A read in progress at an :class:`AggregateReplica`: the answers so far, by node."""

    __slots__ = ("answers", "deadline")

    def __init__(self, own: int, node_id: int, deadline: float) -> None:
        self.answers = {node_id: own}
        self.deadline = deadline


class AggregateReplica(LocalSessions):
    """One node of ``aggregate`` for the simulator (see the module docstring).

    Messages: ``q ID`` (count request), answered by ``a ID COUNT`` to the asker. Answers
    of unknown or finished reads, and a second answer from one node, are ignored.
    """

    def __init__(self, node_id: int, nodes: int, timeout: float, read_timeout: float) -> None:
        super().__init__(node_id, timeout)
        self.nodes = nodes
        self.request_timeout = read_timeout
        self.reads: dict[int, PendingRead] = {}
        self.outbox: list[Message] = []
        self.done: list[Answer] = []

    def count(self, now: float) -> int:
        """This node's own sessions (a read is :meth:`request` ``count``)."""
        return self.sessions.count(now)

    def request(self, request_id: int, kind: str, user: str, now: float) -> None:
        if kind != "count":
            apply(self.sessions, kind, user, now)
            self.done.append(Answer(request_id, True))
            return
        read = PendingRead(self.sessions.count(now), self.node_id, now + self.request_timeout)
        if self.nodes == 1:
            self.done.append(Answer(request_id, True, read.answers[self.node_id]))
            return
        self.reads[request_id] = read
        body = f"q {request_id}".encode("ascii")
        self.outbox.extend(
            Message(self.node_id, node, body) for node in range(self.nodes) if node != self.node_id
        )

    def sync(self, now: float) -> list[Message]:
        return []

    def receive(self, message: Message, now: float) -> list[Message]:
        parts = message.body.decode("ascii").split()
        if parts[0] == "q":
            body = f"a {parts[1]} {self.sessions.count(now)}".encode("ascii")
            return [Message(self.node_id, message.src, body)]
        read_id = int(parts[1])
        read = self.reads.get(read_id)
        if read is not None and message.src not in read.answers:
            read.answers[message.src] = int(parts[2])
            if len(read.answers) == self.nodes:
                del self.reads[read_id]
                self.done.append(Answer(read_id, True, sum(read.answers.values())))
        return []

    def poll(self, now: float) -> tuple[list[Message], list[Answer]]:
        done, self.done = self.done, []
        for read_id in [i for i, r in self.reads.items() if r.deadline <= now]:
            answers = self.reads.pop(read_id).answers
            done.append(Answer(read_id, True, sum(answers.values()), partial=True))
        outbox, self.outbox = self.outbox, []
        return outbox, done


class AggregateOnDemand(ServiceStrategy):
    name = "aggregate"
    summary = "Each node server counts its own sessions; a read asks all nodes at once and sums."
    consistency = Consistency.EVENTUAL
    specification = SESSIONS
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})
    article_approach = "Aggregate on demand"
    service = "nodes"

    def client(self, namespace: str, worker: int) -> ClientNode:
        return AggregateClientNode(NodeCluster.of(self.config, namespace, worker))

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        return AsyncAggregateClientNode(await AsyncNodeCluster.of(self.config, namespace, worker))

    def replica(self, node_id: int) -> AggregateReplica:
        """The design's twin for the fault simulator (see the module docstring)."""
        timeout = min(READ_TIMEOUT, self.config.request_timeout)
        return AggregateReplica(node_id, self.config.nodes, self.config.session_timeout, timeout)
