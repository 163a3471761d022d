"""``aggregate``: aggregate on demand, as the article designs it. Each node counts only its
own users' sessions, in memory beside them; a read asks every node at once and sums.

A node (:class:`AggregateNode`) lives in the process of the workers whose users it holds
(a :class:`~.base.HostedStrategy`): worker ``w``'s login, logout and heartbeat are a lock
and a session-table update on node ``w % nodes``, in its own process, with no I/O. The
driver serves each node's requests (the central protocol, under the node's lock) on
loopback. A read counts its own node at once and sends a count request to every other
node's server before reading any answer; a node that has not answered within
``READ_TIMEOUT`` seconds (or the request timeout, if shorter), or cannot be reached, is
left out: the read is then *partial* (counted in the client's statistics, which reach the
report) and that connection is reopened at the next read. Consistency: eventual; a read
is not a snapshot (nodes answer at slightly different moments) and a partial read
under-counts. The node's own users' writes never wait on another node.

``aggregate-remote`` (:class:`AggregateRemote`) is the client-server shape of the same
design: every node is a server process of its own (the central service's server, one per
node) and a worker's write is a round trip to its home node ``w % nodes``; reads fan out
the same way. Beside ``aggregate`` it shows what the network hop on every write costs.

:class:`AggregateReplica` is the design as a sans-I/O state machine for the fault
simulator (a :class:`~.base.RequestReplica`): a node holds only its own sessions; a read
at node i counts its own at once and sends a count request to every other node, and sums
the answers that arrive within ``READ_TIMEOUT`` (virtual) seconds; a node that has not
answered by then is left out (a partial read). Writes are local: the node's own table.
A node that crashes without its state loses its sessions (the users' heartbeats do not
bring them back: a heartbeat of an unknown user is ignored, as in the real server).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

from .base import (
    Answer,
    AsyncClientNode,
    ClientNode,
    Consistency,
    HostedNode,
    HostedStrategy,
    Message,
    ServiceStrategy,
    StrategyConfig,
)
from .batching import AsyncBatchingClient, Batch, BatchingClient
from .session import LocalSessions, apply
from .spec import SESSIONS

if TYPE_CHECKING:
    from .central_protocol import AsyncCentralClient, CentralClient, SessionRequests

READ_TIMEOUT = 2.0
CONNECT_TIMEOUT = 10.0


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not a HOST:PORT address: {text!r}")
    return host, int(port)


def node_addresses(endpoint: str) -> list[tuple[str, int]]:
    """``nodes://HOST:PORT,HOST:PORT,...`` -> [(host, port), ...]."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "nodes" or not rest:
        raise ValueError(f"not a node cluster URL: {endpoint!r}")
    return [parse_address(part) for part in rest.split(",")]


def read_timeout(config: StrategyConfig) -> float:
    """How long a read waits for the other nodes: ``READ_TIMEOUT``, or less."""
    return min(READ_TIMEOUT, config.request_timeout)


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


class Peers:
    """Connections to some nodes' servers, opened lazily and reopened after a failure;
    :meth:`total` asks them all at once."""

    def __init__(
        self, addresses: Sequence[tuple[str, int]], namespace: str, timeout: float
    ) -> None:
        self.addresses = list(addresses)
        self.namespace, self.timeout = namespace, timeout
        self.clients: list[CentralClient | None] = [None] * len(self.addresses)

    def client(self, index: int) -> CentralClient | None:
        """Node ``index``'s open connection, (re)opened if need be; None if unreachable."""
        from .central_protocol import CentralClient, CentralServiceError

        client = self.clients[index]
        if client is None or client.closed:
            try:
                client = CentralClient(*self.addresses[index], self.namespace, self.timeout)
            except CentralServiceError:
                client = None
            self.clients[index] = client
        return client

    def total(self, now: float, timeout: float) -> tuple[int, bool]:
        """The sum of the answers within ``timeout`` seconds, and whether every node gave one."""
        from .central_protocol import fan_out_count

        clients = [self.client(i) for i in range(len(self.addresses))]
        live = [c for c in clients if c is not None]
        answers = fan_out_count(live, now, timeout)
        complete = len(live) == len(clients) and None not in answers
        return sum(a for a in answers if a is not None), complete

    def close(self) -> None:
        for client in self.clients:
            if client is not None:
                client.close()


class AsyncPeers:
    """The asyncio twin of :class:`Peers` (a read gathers every node's answer)."""

    def __init__(
        self, addresses: Sequence[tuple[str, int]], namespace: str, timeout: float
    ) -> None:
        self.addresses = list(addresses)
        self.namespace, self.timeout = namespace, timeout
        self.clients: list[AsyncCentralClient | None] = [None] * len(self.addresses)

    async def client(self, index: int) -> AsyncCentralClient | None:
        from .central_protocol import AsyncCentralClient, CentralServiceError

        client = self.clients[index]
        if client is None or client.closed:
            try:
                client = await AsyncCentralClient.open(
                    *self.addresses[index], self.namespace, self.timeout
                )
            except CentralServiceError:
                client = None
            self.clients[index] = client
        return client

    async def _count(self, index: int, now: float, timeout: float) -> int | None:
        import asyncio

        client = await self.client(index)
        if client is None:
            return None
        try:
            return await asyncio.wait_for(client.count(now), timeout)
        except Exception:  # timed out or lost: leave it out, reopen it next time
            await client.close()
            return None

    async def total(self, now: float, timeout: float) -> tuple[int, bool]:
        import asyncio

        answers = await asyncio.gather(
            *(self._count(i, now, timeout) for i in range(len(self.addresses)))
        )
        return sum(a for a in answers if a is not None), None not in answers

    async def close(self) -> None:
        for client in self.clients:
            if client is not None:
                await client.close()


# ---------------------------------------------------------------- aggregate: nodes beside workers


class AggregateNode:
    """One node of ``aggregate``: its own users' sessions, in the process they live in.

    Its workers call it directly (a lock, then a session-table update); ``requests``
    answers the other nodes in the central protocol under the same lock. A ``D`` request
    empties the table, as it does on the central service.
    """

    def __init__(self, node_id: int, namespace: str, timeout: float) -> None:
        from .central_protocol import LockedSessionRequests

        self.node_id, self.namespace = node_id, namespace
        self.lock = threading.Lock()
        self.requests: SessionRequests = LockedSessionRequests(timeout, self.lock)
        self.state = self.requests.namespace(namespace)

    def login(self, user: str, now: float) -> None:
        with self.lock:
            self.state.tracker.login(user, now)

    def logout(self, user: str, now: float) -> None:
        with self.lock:
            self.state.tracker.logout(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        with self.lock:
            self.state.tracker.heartbeat(user, now)

    def count(self, now: float) -> int:
        with self.lock:
            return self.state.tracker.count(now)


class HostedAggregateClient:
    """Writes to the worker's own node, in this process; reads sum it and every peer."""

    def __init__(self, node: AggregateNode, peers: Peers, timeout: float) -> None:
        self.node, self.peers, self.timeout = node, peers, timeout
        self.login, self.logout, self.heartbeat = node.login, node.logout, node.heartbeat
        self.stats_ = ReadStats()

    def count(self, now: float) -> int:
        self.stats_.reads += 1
        own = self.node.count(now)
        others, complete = self.peers.total(now, self.timeout)
        if not complete:
            self.stats_.partial_reads += 1
        return own + others

    def sync(self, now: float) -> None:
        return None

    def stats(self) -> dict[str, float]:
        return self.stats_.as_dict()

    def close(self) -> None:
        self.peers.close()


class AsyncHostedAggregateClient:
    """The asyncio twin of :class:`HostedAggregateClient`: writes are still plain calls."""

    def __init__(self, node: AggregateNode, peers: AsyncPeers, timeout: float) -> None:
        self.node, self.peers, self.timeout = node, peers, timeout
        self.stats_ = ReadStats()

    async def login(self, user: str, now: float) -> None:
        self.node.login(user, now)

    async def logout(self, user: str, now: float) -> None:
        self.node.logout(user, now)

    async def heartbeat(self, user: str, now: float) -> None:
        self.node.heartbeat(user, now)

    async def count(self, now: float) -> int:
        self.stats_.reads += 1
        own = self.node.count(now)
        others, complete = await self.peers.total(now, self.timeout)
        if not complete:
            self.stats_.partial_reads += 1
        return own + others

    async def sync(self, now: float) -> None:
        return None

    def stats(self) -> dict[str, float]:
        return self.stats_.as_dict()

    async def close(self) -> None:
        await self.peers.close()


def _others(node: HostedNode, peers: Sequence[str]) -> list[tuple[str, int]]:
    return [parse_address(a) for i, a in enumerate(peers) if i != node.node_id]


def _own(node: HostedNode) -> AggregateNode:
    if not isinstance(node, AggregateNode):
        raise TypeError(f"aggregate runs on its own AggregateNode, not {type(node).__name__}")
    return node


# ---------------------------------------------------------------- aggregate-remote: node servers


class AggregateClientNode(BatchingClient):
    """A worker's connections to every node server: writes go to its home node (batched),
    a read asks every node and sums, a partial read if some node does not answer in time."""

    def __init__(
        self,
        endpoint: str,
        namespace: str,
        worker: int,
        depth: int,
        timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.read_timeout = min(READ_TIMEOUT, timeout)
        self.peers = Peers(node_addresses(endpoint), namespace, timeout)
        self.home = worker % len(self.peers.addresses)
        self.peers.client(self.home)
        self.batch = Batch(depth)
        self.read_stats = ReadStats()

    @classmethod
    def of(cls, config: StrategyConfig, namespace: str, worker: int) -> Self:
        """Worker ``worker``'s client of the nodes of ``config.endpoint``."""
        return cls(config.endpoint, namespace, worker, config.pipeline, config.request_timeout)

    def write(self, kind: str, user: str, now: float) -> None:
        if self.batch.add((kind, user, now)):
            self.flush()

    def flush(self) -> None:
        from .central_protocol import CentralServiceError

        if self.batch.requests:
            home = self.peers.client(self.home)
            if home is None:
                raise CentralServiceError(f"node {self.home} is unreachable")
            home.pipeline(self.batch.take())

    def total(self, now: float) -> int:
        """Sum of every node's count, asked of all at once."""
        self.flush()
        total, complete = self.peers.total(now, self.read_timeout)
        if not complete:
            self.read_stats.partial_reads += 1
        return total

    def count(self, now: float) -> int:
        self.read_stats.reads += 1
        return self.total(now)

    def stats(self) -> dict[str, float]:
        return self.read_stats.as_dict()

    def disconnect(self) -> None:
        self.peers.close()


class AsyncAggregateClientNode(AsyncBatchingClient):
    """The asyncio twin of :class:`AggregateClientNode`; :meth:`of` connects it."""

    def __init__(
        self, endpoint: str, namespace: str, worker: int, depth: int, timeout: float
    ) -> None:
        self.read_timeout = min(READ_TIMEOUT, timeout)
        self.peers = AsyncPeers(node_addresses(endpoint), namespace, timeout)
        self.home = worker % len(self.peers.addresses)
        self.batch = Batch(depth)
        self.read_stats = ReadStats()

    @classmethod
    async def of(cls, config: StrategyConfig, namespace: str, worker: int) -> Self:
        """Worker ``worker``'s connected client (see :meth:`AggregateClientNode.of`)."""
        node = cls(config.endpoint, namespace, worker, config.pipeline, config.request_timeout)
        for i in range(len(node.peers.addresses)):
            await node.peers.client(i)
        return node

    async def write(self, kind: str, user: str, now: float) -> None:
        if self.batch.add((kind, user, now)):
            await self.flush()

    async def flush(self) -> None:
        from .central_protocol import CentralServiceError

        if self.batch.requests:
            home = await self.peers.client(self.home)
            if home is None:
                raise CentralServiceError(f"node {self.home} is unreachable")
            await home.pipeline(self.batch.take())

    async def total(self, now: float) -> int:
        await self.flush()
        total, complete = await self.peers.total(now, self.read_timeout)
        if not complete:
            self.read_stats.partial_reads += 1
        return total

    async def count(self, now: float) -> int:
        self.read_stats.reads += 1
        return await self.total(now)

    def stats(self) -> dict[str, float]:
        return self.read_stats.as_dict()

    async def disconnect(self) -> None:
        await self.peers.close()


# ---------------------------------------------------------------- the simulator's twin


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


def _twin(config: StrategyConfig, node_id: int) -> AggregateReplica:
    return AggregateReplica(node_id, config.nodes, config.session_timeout, read_timeout(config))


class AggregateOnDemand(HostedStrategy):
    name = "aggregate"
    syncs = False  # nothing to replicate: a read asks every node
    summary = "Each node counts its own users beside them; a read asks every node and sums."
    consistency = Consistency.EVENTUAL
    specification = SESSIONS
    article_approach = "Aggregate on demand"

    def host(self, node_id: int, namespace: str) -> AggregateNode:
        return AggregateNode(node_id, namespace, self.config.session_timeout)

    def client(self, node: HostedNode, peers: Sequence[str], worker: int) -> ClientNode:
        host, timeout = _own(node), read_timeout(self.config)
        others = Peers(_others(node, peers), host.namespace, timeout)
        return HostedAggregateClient(host, others, timeout)

    async def async_client(
        self, node: HostedNode, peers: Sequence[str], worker: int
    ) -> AsyncClientNode:
        host, timeout = _own(node), read_timeout(self.config)
        others = AsyncPeers(_others(node, peers), host.namespace, timeout)
        return AsyncHostedAggregateClient(host, others, timeout)

    def replica(self, node_id: int) -> AggregateReplica:
        """The design's twin for the fault simulator (see the module docstring)."""
        return _twin(self.config, node_id)


class NodeServerStrategy(ServiceStrategy):
    """A strategy whose nodes are server processes (service ``nodes``): each worker
    writes to its home node and reads through its client class (:attr:`blocking`,
    :attr:`asynchronous`) over its connections to every node."""

    consistency = Consistency.EVENTUAL
    service = "nodes"
    blocking: ClassVar[type[AggregateClientNode]] = AggregateClientNode
    asynchronous: ClassVar[type[AsyncAggregateClientNode]] = AsyncAggregateClientNode

    def client(self, namespace: str, worker: int) -> ClientNode:
        return self.blocking.of(self.config, namespace, worker)

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        return await self.asynchronous.of(self.config, namespace, worker)


class AggregateRemote(NodeServerStrategy):
    name = "aggregate-remote"
    syncs = False  # a sync only flushes the queued writes
    summary = "aggregate with every node a server process: each write is a round trip to it."
    specification = SESSIONS

    def replica(self, node_id: int) -> AggregateReplica:
        """The same twin as ``aggregate``'s: in the simulator a node's writes are local."""
        return _twin(self.config, node_id)
