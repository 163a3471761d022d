"""What every driver shares: binding streams to nodes, carrying messages, replaying passes.

A driver runs a :class:`~countbench.bench.workload.Workload` on a strategy's nodes with
``workers`` concurrent workers. ``run(stream, passes)`` is the timed part: every worker
replays its stream ``passes`` times, concurrently, and the call returns the wall-clock
seconds from the start signal to the last worker's finish. Everything else (starting
threads or processes, building nodes, binding operations) happens before, untimed.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from ...strategies.base import (
    AsyncClientNode,
    ClientNode,
    HostedNode,
    HostedStrategy,
    LockedNode,
    Message,
    Mode,
    Node,
    Replica,
    ReplicatedStrategy,
    ReportsReads,
    ServiceStrategy,
    SharedStrategy,
    Strategy,
)
from ...strategies.closing import Closing
from ...strategies.errors import RunError
from ..latency import LatencyRecorder
from ..workload import Op, Stream, Workload

if TYPE_CHECKING:
    from ..servers.nodes import NodeServer

StreamName = Literal["writes", "reads", "mixed"]
STREAMS: tuple[StreamName, ...] = ("writes", "reads", "mixed")
#: What a driver can replay: the timed streams, and ``fill`` (see ``Workload.fill``).
ReplayName = StreamName | Literal["fill"]
REPLAYED: tuple[ReplayName, ...] = (*STREAMS, "fill")

Call = Callable[[str, float], object]
AsyncCall = Callable[[str, float], Awaitable[object]]
BoundOp = tuple[Call, str, float]
AsyncBoundOp = tuple[AsyncCall, str, float]


class DriverError(RuntimeError, RunError):
    """A driver could not run (a worker died, a mode is unsupported)."""


def no_sync(_user: str, _now: float) -> None:
    return None


def _bound(stream: Stream, calls: dict[Op, Any]) -> list[Any]:
    return [
        (calls[kind], user, now)
        for kind, user, now in zip(stream.kinds, stream.users, stream.times, strict=True)
    ]


def _writes(node: Node | AsyncClientNode) -> dict[Op, Any]:
    return {Op.LOGIN: node.login, Op.LOGOUT: node.logout, Op.HEARTBEAT: node.heartbeat}


def bind(
    stream: Stream, node: Node, sync: Call = no_sync, recorder: LatencyRecorder | None = None
) -> list[BoundOp]:
    """Turn a stream into (call, user, time) triples against ``node``: the replay loop then
    does one call per operation with no dispatch on the kind. With a recorder, every client
    call is timed into its histogram."""

    def read(_user: str, now: float) -> int:
        return node.count(now)

    calls: dict[Op, Call] = {**_writes(node), Op.READ: read, Op.SYNC: sync}
    if recorder is not None:
        calls = {kind: recorder.wrap(kind, call) for kind, call in calls.items()}
    return _bound(stream, calls)


def bind_async(
    stream: Stream, node: AsyncClientNode, recorder: LatencyRecorder | None = None
) -> list[AsyncBoundOp]:
    """:func:`bind` for an asyncio client; a sync point calls its ``sync``."""

    async def read(_user: str, now: float) -> int:
        return await node.count(now)

    async def sync(_user: str, now: float) -> None:
        await node.sync(now)

    calls: dict[Op, AsyncCall] = {**_writes(node), Op.READ: read, Op.SYNC: sync}
    if recorder is not None:
        calls = {kind: recorder.wrap_async(kind, call) for kind, call in calls.items()}
    return _bound(stream, calls)


def client_sync(client: ClientNode) -> Call:
    def sync(_user: str, now: float) -> None:
        client.sync(now)

    return sync


def node_stats(nodes: Sequence[object]) -> list[dict[str, float]]:
    """The ``stats()`` of every node that keeps them (:class:`ReportsReads`; empty ones,
    of a :class:`~countbench.strategies.base.ThreadedClient` around a client without
    statistics, are none)."""
    found = (dict(node.stats()) for node in nodes if isinstance(node, ReportsReads))
    return [stats for stats in found if stats]


def replay(ops: Sequence[BoundOp], first_pass: int, passes: int, horizon: float) -> None:
    """Apply ``ops`` ``passes`` times; pass k runs at times shifted by k * horizon."""
    for k in range(first_pass, first_pass + passes):
        offset = k * horizon
        for call, user, now in ops:
            call(user, now + offset)


async def replay_async(
    ops: Sequence[AsyncBoundOp], first_pass: int, passes: int, horizon: float
) -> None:
    for k in range(first_pass, first_pass + passes):
        offset = k * horizon
        for call, user, now in ops:
            await call(user, now + offset)


T = TypeVar("T")


def chunk_cycle(workload: Workload, stream: StreamName) -> int:
    """How many whole sync intervals (``sync_every`` client operations and the sync after
    them) every worker's ``stream`` holds; 0 when some worker's holds none."""
    size = workload.spec.sync_every
    streams: list[Stream] = getattr(workload, stream)
    return min(s.client_ops // size for s in streams)


#: The most chunks a sync interval is cut into (see :func:`chunks_per_interval`).
MAX_CHUNKS_PER_INTERVAL = 20


def chunks_per_interval(workload: Workload, syncs: bool) -> int:
    """How many timed chunks one sync interval makes: 1 for a strategy whose sync does work
    (:attr:`~countbench.strategies.base.Strategy.syncs`: a chunk must then end with it, so
    that every loop pays its share), and with a pipeline deeper than 1 (a client's sync
    then sends the writes it has queued); else the most, up to :data:`MAX_CHUNKS_PER_INTERVAL`,
    that divide ``sync_every`` evenly, so that every chunk holds as many client operations
    (pyperf's inner loops) and a slow strategy's loop can be shorter than an interval."""
    size = workload.spec.sync_every
    if syncs or workload.spec.pipeline > 1:  # a deeper pipeline's sync flushes its batch
        return 1
    return max(k for k in range(1, MAX_CHUNKS_PER_INTERVAL + 1) if size % k == 0)


def chunk_ops(workload: Workload, stream: StreamName, per_interval: int = 1) -> int:
    """Client operations in one timed loop over all workers: each worker's next chunk
    (``per_interval`` chunks to a sync interval, see :func:`chunks_per_interval`)."""
    if chunk_cycle(workload, stream):
        return workload.spec.workers * (workload.spec.sync_every // per_interval)
    return sum(s.client_ops for s in getattr(workload, stream))


def split_chunks(ops: list[T], cycle: int, size: int, per_interval: int = 1) -> list[list[T]]:
    """The first ``cycle`` sync intervals of ``ops`` (or all of ``ops`` when cycle is 0),
    each cut into ``per_interval`` chunks of ``size // per_interval`` client operations (the
    interval's sync ends its last chunk)."""
    if cycle == 0:
        return [ops]
    step, part = size + 1, size // per_interval
    return [
        ops[
            j * step + i * part : j * step + (i + 1) * part
            if i < per_interval - 1
            else (j + 1) * step
        ]
        for j in range(cycle)
        for i in range(per_interval)
    ]


def replay_chunks(
    chunks: Sequence[Sequence[BoundOp]], first: int, count: int, base: int, horizon: float
) -> None:
    """Apply chunks ``first`` to ``first + count - 1``, cycling; each new cycle runs one
    horizon later (counted from pass ``base``) so time never runs backwards."""
    n = len(chunks)
    for i in range(first, first + count):
        offset = (base + i // n) * horizon
        for call, user, now in chunks[i % n]:
            call(user, now + offset)


@dataclass(frozen=True)
class Work:
    """What a worker is asked to do: ``count`` passes of ``stream`` from pass ``first``,
    or, with ``base`` set, ``count`` chunks from chunk ``first`` (see replay_chunks)."""

    stream: ReplayName
    first: int
    count: int
    base: int | None = None


class WorkerOps:
    """One worker's bound operations: each stream whole, and cut into timed chunks."""

    def __init__(
        self, workload: Workload, ops: dict[ReplayName, list[BoundOp]], per_interval: int = 1
    ) -> None:
        size = workload.spec.sync_every
        self.ops = ops
        self.chunks: dict[ReplayName, list[list[BoundOp]]] = {
            name: split_chunks(ops[name], chunk_cycle(workload, name), size, per_interval)
            for name in STREAMS
            if name in ops
        }

    def do(self, work: Work, horizon: float) -> None:
        if work.base is None:
            replay(self.ops[work.stream], work.first, work.count, horizon)
        else:
            replay_chunks(self.chunks[work.stream], work.first, work.count, work.base, horizon)


def horizon(workload: Workload) -> float:
    """A time shift larger than any stream's span, so repeated passes move time forward."""
    streams = (*workload.writes, *workload.reads, *workload.mixed)
    return max((s.times[-1] for s in streams if s.times), default=0.0) + 1.0


class Router:
    """Carries replica messages within one process, synchronously (thread and asyncio mode).

    With ``locks`` each replica is entered under its own lock, so threads may share it.
    """

    def __init__(self, replicas: Sequence[Replica], locked: bool) -> None:
        self.replicas = list(replicas)
        self.locks = [threading.Lock() for _ in replicas] if locked else None
        self.messages = 0
        self.bytes = 0

    def sync(self, node_id: int, now: float) -> None:
        self.deliver(self._enter(node_id, lambda r: r.sync(now)), now)

    def deliver(self, messages: list[Message], now: float) -> None:
        pending = list(messages)
        while pending:
            message = pending.pop()
            targets = range(len(self.replicas)) if message.dst is None else (message.dst,)
            for dst in targets:
                if dst == message.src:
                    continue
                self.messages += 1
                self.bytes += len(message.body)
                pending.extend(self._enter(dst, lambda r: r.receive(message, now)))  # noqa: B023

    def settle(self, now: float) -> None:
        """One full round: every replica sends its state and every message is delivered."""
        for node_id in range(len(self.replicas)):
            self.sync(node_id, now)

    def _enter(self, node_id: int, action: Callable[[Replica], list[Message]]) -> list[Message]:
        if self.locks is None:
            return action(self.replicas[node_id])
        with self.locks[node_id]:
            return action(self.replicas[node_id])


class WorkerNodes:
    """The nodes of one strategy as this process sees them, and what worker ``w`` calls.

    Shared: one node for every worker. Replicated: ``config.nodes`` replicas carried by a
    :class:`Router`, worker ``w`` a client of replica ``w % nodes``. Service: each worker
    opens its own client (``node_for`` must run inside the worker's thread). Hosted: every
    node is hosted here, and worker ``w`` opens its own client on node ``w % nodes``.
    """

    def __init__(self, strategy: Strategy, mode: Mode, namespace: str) -> None:
        self.strategy, self.namespace = strategy, namespace
        self.router: Router | None = None
        self.nodes: list[Node] = []
        self.hosts: list[HostedNode] = []
        self.servers: list[NodeServer] = []
        self.clients: list[ClientNode] = []
        self._clients_lock = threading.Lock()
        if isinstance(strategy, HostedStrategy):
            from ..servers.nodes import NodeServer

            try:
                for i in range(strategy.config.nodes):
                    self.hosts.append(strategy.host(i, namespace))
                    self.servers.append(NodeServer(self.hosts[-1].requests))
            except BaseException:
                self.close()
                raise
        elif isinstance(strategy, SharedStrategy):
            self.nodes = [strategy.open(mode)]
        elif isinstance(strategy, ReplicatedStrategy):
            replicas = [strategy.replica(i) for i in range(strategy.config.nodes)]
            self.router = Router(replicas, locked=mode is Mode.THREAD)
            locks = self.router.locks
            self.nodes = [
                replica if locks is None else LockedNode(replica, locks[i])
                for i, replica in enumerate(replicas)
            ]
        elif not isinstance(strategy, ServiceStrategy):
            raise DriverError(f"strategy {strategy.name!r} is of no kind countbench can drive")

    @property
    def peers(self) -> list[str]:
        """Every hosted node's address, by node id."""
        return [server.address for server in self.servers]

    def node_for(self, worker: int) -> tuple[Node, Call]:
        """The node worker ``worker`` calls, and what its sync points do."""
        strategy = self.strategy
        if isinstance(strategy, ServiceStrategy | HostedStrategy):
            if isinstance(strategy, HostedStrategy):
                client = strategy.client(self.hosts[worker % len(self.hosts)], self.peers, worker)
            else:
                client = strategy.client(self.namespace, worker)
            with self._clients_lock:
                self.clients.append(client)
            return client, client_sync(client)
        node_id = worker % len(self.nodes)
        router = self.router
        if router is None:
            return self.nodes[node_id], no_sync

        def sync(_user: str, now: float) -> None:
            router.sync(node_id, now)

        return self.nodes[node_id], sync

    def settle(self, now: float) -> None:
        if self.router is not None:
            self.router.settle(now)
        # Two rounds: every client's buffered writes are out before any refreshes a view.
        for _ in range(2):
            for client in self.clients:
                client.sync(now)

    def counts(self, now: float) -> list[int]:
        """Each node's count; for a service strategy, each worker's client's."""
        nodes: Sequence[Node] = self.clients if self.clients else self.nodes
        return [node.count(now) for node in nodes]

    def stats(self) -> list[dict[str, float]]:
        return node_stats(self.clients)

    async def async_client(self, worker: int) -> AsyncClientNode:
        """Worker ``worker``'s asyncio client (service and hosted strategies)."""
        if isinstance(self.strategy, HostedStrategy):
            home = self.hosts[worker % len(self.hosts)]
            return await self.strategy.async_client(home, self.peers, worker)
        assert isinstance(self.strategy, ServiceStrategy)
        return await self.strategy.async_client(self.namespace, worker)

    def close(self) -> None:
        with self._clients_lock:
            clients, self.clients = self.clients, []
        try:
            for client in clients:
                client.close()
        finally:
            servers, self.servers = self.servers, []
            for server in servers:
                server.close()


class Driver(Closing, ABC):
    """Runs a workload on a strategy with ``workers`` concurrent workers."""

    mode: Mode

    def __init__(
        self,
        strategy: Strategy,
        workload: Workload,
        workers: int,
        namespace: str = "countbench:local:",
        record_latency: bool = False,
    ) -> None:
        self.strategy = strategy
        self.workload = workload
        self.workers = workers
        self.namespace = namespace
        self.record_latency = record_latency
        self.horizon = horizon(workload)
        #: Timed chunks per sync interval (see chunks_per_interval).
        self.per_interval = chunks_per_interval(workload, type(strategy).syncs)
        self.passes_done = 0
        self._chunks_done: dict[StreamName, int] = {}
        self._chunk_base: dict[StreamName, int] = {}

    @abstractmethod
    def start(self) -> None:
        """Build nodes and start workers (untimed)."""

    @abstractmethod
    def _run(self, work: Work) -> float:
        """Have every worker do ``work`` at once; the seconds from start to last finish."""

    def run(self, stream: ReplayName, passes: int = 1) -> float:
        """Replay ``stream`` ``passes`` times on every worker; return elapsed seconds."""
        elapsed = self._run(Work(stream, self.passes_done, passes))
        self.passes_done += passes
        return elapsed

    def run_chunks(self, stream: StreamName, count: int) -> float:
        """Every worker replays its next ``count`` chunks of ``stream`` (one chunk is one
        sync interval, or a part of one for a strategy whose syncs do no work; see
        :func:`chunk_ops`); return elapsed seconds. This is pyperf's loop: short enough to
        calibrate for slow strategies as for fast ones."""
        first = self._chunks_done.get(stream, 0)
        base = self._chunk_base.setdefault(stream, self.passes_done)
        elapsed = self._run(Work(stream, first, count, base))
        self._chunks_done[stream] = first + count
        return elapsed

    @abstractmethod
    def settle(self) -> None:
        """Let replicas exchange state until every message is delivered."""

    @abstractmethod
    def counts(self) -> list[int]:
        """Every node's count now (at the end of the passes run so far)."""

    @abstractmethod
    def close(self) -> None:
        """Stop every worker; safe to call twice."""

    def __enter__(self) -> Self:
        self.start()
        return self

    @abstractmethod
    def latencies(self) -> list[dict[str, bytes]]:
        """Each worker's encoded latency histograms (empty without ``record_latency``)."""

    @abstractmethod
    def node_stats(self) -> list[dict[str, float]]:
        """What each worker's client node counted about its own reads, for strategies whose
        nodes keep such statistics (a ``stats()`` method); empty otherwise."""

    def now(self) -> float:
        """The virtual time just after the last pass, used for settle and final reads."""
        return max(self.passes_done - 1, 0) * self.horizon + self.workload.end_time

    def client_ops(self, stream: StreamName) -> int:
        """Client operations (not syncs) in one pass of ``stream`` over all workers."""
        return sum(s.client_ops for s in getattr(self.workload, stream))
