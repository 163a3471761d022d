"""The strategy interface: how a cluster of servers answers "how many users are online?".

A *strategy* describes a design; a *node* is one server running it. Every node takes
``login``, ``logout`` and ``heartbeat`` for a user and answers ``count``. Time is always
passed in by the caller (``now``, in seconds on the caller's clock); no strategy reads a
clock, starts a thread or opens a socket. That keeps each strategy a plain object that the
thread, process and asyncio drivers, and the fault simulator, can all run unchanged.

Every strategy states its :mod:`specification <.spec>`: what its count means, and so
which values a correct count may take. Four kinds of strategy exist:

* :class:`SharedStrategy`: every worker acts on one shared primitive (a counter in memory,
  a counter in shared memory). ``open(mode)`` builds that primitive once, in the parent;
  the driver hands the same node to every worker. Its thread-safety is the strategy's job.
* :class:`ReplicatedStrategy`: each node is a :class:`Replica`, a pure state machine that
  takes client events and incoming :class:`Message` s and emits outgoing messages. It is not
  thread-safe; the driver serialises access to each replica and carries its messages.
* :class:`ServiceStrategy`: the state lives in a server (Redis, the central service);
  each worker opens its own client to it.
* :class:`HostedStrategy`: each node lives in the process of the workers that use it and
  serves the other nodes over loopback (a write is local, a read may ask every node).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from .spec import SESSIONS, Specification

T = TypeVar("T")

if TYPE_CHECKING:
    from .central_protocol import SessionRequests


class Consistency(StrEnum):
    """The consistency a strategy claims (the fault simulator measures what it delivers)."""

    STRONG = "strong"
    EVENTUAL = "eventual"
    APPROXIMATE = "approximate"


class Mode(StrEnum):
    """How workers are run: threads in one process, one process per node, or asyncio tasks."""

    THREAD = "thread"
    PROCESS = "process"
    ASYNCIO = "asyncio"


class Topology(StrEnum):
    """How a strategy's nodes talk to each other."""

    ISOLATED = "isolated"  # not at all: each node alone (a read asks them all)
    SHARED = "shared"  # through one shared primitive
    MESSAGES = "messages"  # by exchanging messages


@runtime_checkable
class Node(Protocol):
    """One server's view of the online users.

    ``login`` of a user the node already counts and ``logout`` of one it does not are the
    strategy's business: a strategy documents what it does with them.
    """

    def login(self, user: str, now: float) -> None: ...

    def logout(self, user: str, now: float) -> None: ...

    def heartbeat(self, user: str, now: float) -> None: ...

    def count(self, now: float) -> int: ...


class LockedNode:
    """Any node behind one lock: every call is serialised (for nodes shared by threads)."""

    def __init__(self, node: Node, lock: threading.Lock | None = None) -> None:
        self.node = node
        self.lock = lock or threading.Lock()

    def login(self, user: str, now: float) -> None:
        with self.lock:
            self.node.login(user, now)

    def logout(self, user: str, now: float) -> None:
        with self.lock:
            self.node.logout(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        with self.lock:
            self.node.heartbeat(user, now)

    def count(self, now: float) -> int:
        with self.lock:
            return self.node.count(now)


@dataclass(frozen=True, slots=True)
class Message:
    """A message between replicas. ``dst`` None means every other replica.

    ``informs`` says what the fault simulator, which tracks who knows which change, may
    assume of its delivery. True (the default): the receiver then knows every change the
    sender knew when it sent it (true of a full state and of the answer to a digest; for a
    delta, an approximation). False: nothing (a question such as a digest or a request,
    even one that carries a little news along)."""

    src: int
    dst: int | None
    body: bytes
    informs: bool = True


class Replica(Node, Protocol):
    """A node of a replicated strategy: a deterministic state machine.

    ``sync(now)`` is called at every sync tick and returns what the replica wants sent;
    ``receive(message, now)`` applies one incoming message and returns any replies. The
    same inputs in the same order always give the same state and the same outputs.
    """

    node_id: int

    def sync(self, now: float) -> list[Message]: ...

    def receive(self, message: Message, now: float) -> list[Message]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """How a :class:`RequestReplica` finished one client request.

    ``ok`` False: no answer by the deadline (a read failed; a write's effect is unknown).
    A read that is ``ok`` has its ``value``; ``partial`` when nodes that did not answer in
    time were left out of it (the value then under-counts)."""

    request_id: int
    ok: bool
    value: int | None = None
    partial: bool = False


@runtime_checkable
class RequestReplica(Replica, Protocol):
    """A replica whose client calls are requests over the network (a design where a read
    asks other nodes, or where a front-end forwards to the node holding the state).

    The simulator starts each client operation with ``request(request_id, kind, user,
    now)`` (``kind``: ``login``, ``logout``, ``heartbeat`` or ``count``; ``user`` is ""
    for a count) instead of calling ``login``/.../``count``. After every call into the
    replica (a request, a delivered message, the request's deadline at ``now =`` its
    start ``+ request_timeout``) it calls ``poll(now)``: the messages to send, and the
    requests finished since the last poll: answered, or past their deadline (then not
    ``ok``, or a partial read). Every request is finished at its deadline at the latest.
    Still a pure state machine: no clock, no I/O; ``count(now)`` is the node's local
    view only (the simulator judges the answers).
    """

    request_timeout: float

    def request(self, request_id: int, kind: str, user: str, now: float) -> None: ...

    def poll(self, now: float) -> tuple[list[Message], list[Answer]]: ...


class ClientNode(Node, Protocol):
    """A worker's own connection to the server that holds a service strategy's state.

    With a pipeline depth above one, calls may be buffered. ``sync(now)`` marks a sync
    point: it sends what is buffered and waits for the answers (and a strategy that keeps
    a cached view refreshes it there). ``close`` sends what is buffered and disconnects.
    """

    def sync(self, now: float) -> None: ...

    def close(self) -> None: ...


class AsyncClientNode(Protocol):
    """The asyncio twin of :class:`ClientNode`: the same calls, as coroutines."""

    async def login(self, user: str, now: float) -> None: ...

    async def logout(self, user: str, now: float) -> None: ...

    async def heartbeat(self, user: str, now: float) -> None: ...

    async def count(self, now: float) -> int: ...

    async def sync(self, now: float) -> None: ...

    async def close(self) -> None: ...


async def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` in a worker thread (asyncio imported only by those who await)."""
    import asyncio

    return await asyncio.to_thread(call, *args)


class ThreadedClient:
    """An :class:`AsyncClientNode` made of a blocking one: each call runs in a worker
    thread (``asyncio.to_thread``), so the event loop keeps serving the other tasks. What
    a service strategy gets in asyncio mode when it writes no ``async_client``."""

    def __init__(self, client: ClientNode) -> None:
        self.client = client

    async def login(self, user: str, now: float) -> None:
        await _in_thread(self.client.login, user, now)

    async def logout(self, user: str, now: float) -> None:
        await _in_thread(self.client.logout, user, now)

    async def heartbeat(self, user: str, now: float) -> None:
        await _in_thread(self.client.heartbeat, user, now)

    async def count(self, now: float) -> int:
        return await _in_thread(self.client.count, now)

    async def sync(self, now: float) -> None:
        await _in_thread(self.client.sync, now)

    async def close(self) -> None:
        await _in_thread(self.client.close)

    def stats(self) -> dict[str, float]:
        return self.client.stats() if isinstance(self.client, ReportsReads) else {}


# -- optional hooks: a node or strategy that has one is treated accordingly -----------------


@runtime_checkable
class ReportsReads(Protocol):
    """A client node that keeps statistics of its reads (``reads``, ``partial_reads``,
    staleness): they reach the report."""

    def stats(self) -> dict[str, float]: ...


@runtime_checkable
class ServesItself(Protocol):
    """A service strategy that starts its own server (its ``service`` is none of
    countbench's): ``serve(run_id, session_timeout)``, a class method, is a context manager
    that starts the server on loopback, yields ``(endpoint, facts)`` (the URL its clients
    get as ``config.endpoint``; what served the run, safe to print) and stops it on exit."""

    def serve(
        self, run_id: str, session_timeout: float
    ) -> AbstractContextManager[tuple[str, dict[str, Any]]]: ...


@runtime_checkable
class Retiring(Protocol):
    """A replica that can fold a retired replica's state into its own (``compact``):
    ``retire(node_id, now)`` once that replica has stopped for good."""

    def retire(self, node_id: int, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """What a strategy is told about the cluster it runs in.

    ``endpoint`` is the URL of the server a service strategy uses (given by the run, which
    starts it or takes the user's); ``pipeline`` how many operations a client may batch
    into one round trip; ``request_timeout`` how many seconds a client waits for a
    server's answer before it gives the request up (its effect is then unknown).
    """

    nodes: int = 3
    session_timeout: float = 1800.0
    endpoint: str = ""
    pipeline: int = 1
    request_timeout: float = 10.0


class Strategy(ABC):
    """A counting design. Subclasses set the class attributes and one factory method."""

    name: ClassVar[str]
    summary: ClassVar[str]
    consistency: ClassVar[Consistency]
    #: The modes it runs in (each kind has a default: every mode, or thread and asyncio
    #: for a shared node, which process mode needs in shared memory).
    modes: ClassVar[frozenset[Mode]] = frozenset(Mode)
    topology: ClassVar[Topology]
    #: What the count means (:mod:`.spec`), the rule a correct count is judged by. A
    #: strategy that states none is judged by the strictest, the users in an open session.
    specification: ClassVar[Specification] = SESSIONS
    #: The row of the reference article's comparison table this strategy corresponds to.
    article_approach: ClassVar[str | None] = None
    #: Whether a sync point does work of its own (replicates, refreshes a cache). A
    #: strategy whose sync at most sends the writes it has queued says False: its timed
    #: loops may then be parts of a sync interval (bench/drivers/base.py,
    #: ``chunks_per_interval``). Unsaid, it is True: a loop is a whole interval.
    syncs: ClassVar[bool] = True

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config


class SharedStrategy(Strategy):
    """All workers use one node, built once by :meth:`open` in the parent process."""

    topology = Topology.SHARED
    modes = frozenset({Mode.THREAD, Mode.ASYNCIO})
    syncs = False  # the workers share the node: the driver has nothing to sync

    @abstractmethod
    def open(self, mode: Mode) -> Node:
        """Build the shared node for ``mode``. In process mode it must survive pickling
        into a child process at start-up and stay shared (e.g. shared memory)."""


class ServiceStrategy(Strategy):
    """The state lives in a server (Redis, the central service); every worker opens its own
    client, inside the worker, to ``config.endpoint``. Keys or state of one driver live
    under ``namespace`` so runs sharing a server never see each other's users."""

    topology = Topology.SHARED
    #: Which server the run must provide: "redis", "redis-cluster", "central" or "nodes",
    #: or one of the strategy's own (see :class:`ServesItself`).
    service: ClassVar[str]

    @abstractmethod
    def client(self, namespace: str, worker: int) -> ClientNode:
        """Open worker ``worker``'s blocking client (thread and process mode)."""

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        """Open worker ``worker``'s asyncio client (asyncio mode). By default the blocking
        client, each call in a thread (:class:`ThreadedClient`); write one that awaits the
        network to measure an asyncio client."""
        return ThreadedClient(await _in_thread(self.client, namespace, worker))


class HostedNode(Node, Protocol):
    """A node of a :class:`HostedStrategy`, in the process it lives in: its workers call it
    directly; ``requests`` answers the other nodes (the driver serves it on loopback)."""

    node_id: int
    requests: SessionRequests


class HostedStrategy(Strategy):
    """Each node lives beside its workers, in their process, and serves its peers.

    The driver builds every node with :meth:`host` in the process it belongs to (thread
    and asyncio mode: all of them in the one process; process mode: node ``w`` in worker
    ``w``'s process) and serves its requests there, then gives each worker a client of
    node ``worker % nodes`` that knows every node's address (``peers[i]`` is node i's, its
    own included).
    """

    topology = Topology.ISOLATED

    @abstractmethod
    def host(self, node_id: int, namespace: str) -> HostedNode:
        """Build node ``node_id``, holding ``namespace``'s users (no I/O: the driver serves
        its ``requests`` and tells every client the servers' addresses)."""

    @abstractmethod
    def client(self, node: HostedNode, peers: Sequence[str], worker: int) -> ClientNode:
        """Worker ``worker``'s blocking client on ``node`` (thread and process mode)."""

    @abstractmethod
    async def async_client(
        self, node: HostedNode, peers: Sequence[str], worker: int
    ) -> AsyncClientNode:
        """Worker ``worker``'s asyncio client on ``node`` (asyncio mode)."""


class Replicable(Protocol):
    """What the fault simulator runs: anything that builds a :class:`Replica` per node id.
    Every :class:`ReplicatedStrategy` is one; a service strategy may be one too when its
    design has a sans-I/O twin (``eventual``: local counts gossiped between nodes;
    ``aggregate``: a read asks every node, a :class:`RequestReplica`), and so may a shared
    strategy (``session``: one server, the other nodes forward to it)."""

    def replica(self, node_id: int) -> Replica: ...


def simulable(cls: type[Strategy]) -> bool:
    """Whether the fault simulator can run ``cls`` (see :class:`Replicable`)."""
    return issubclass(cls, ReplicatedStrategy) or callable(getattr(cls, "replica", None))


class ReplicaClass(Protocol):
    """A replica's class whose only argument is the node id."""

    def __call__(self, node_id: int) -> Replica: ...


class ReplicatedStrategy(Strategy):
    """One :class:`Replica` per node; replicas converge by exchanging messages, so the
    claim defaults to eventual consistency."""

    topology = Topology.MESSAGES
    consistency = Consistency.EVENTUAL
    #: What :meth:`replica` builds by default: ``replica_class(node_id)``.
    replica_class: ClassVar[ReplicaClass]

    def replica(self, node_id: int) -> Replica:
        """A fresh replica with id ``node_id`` in ``range(config.nodes)``; override it when
        a replica needs more than its id (e.g. ``self.config.session_timeout``)."""
        return type(self).replica_class(node_id)
