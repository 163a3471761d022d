"""The process driver: one worker process per node, i.e. each process is one server.

A shared strategy's node (e.g. a counter in shared memory) is built in the parent and
handed to every process at start-up. A replicated strategy runs one replica per process
(so the cluster has as many nodes as workers); at every sync point a process sends its
replica's messages to the other processes' inbound queues (``multiprocessing.Queue``, i.e.
pipes) and applies whatever has arrived in its own. A hosted strategy's node lives in its
worker's process too (one node per worker): each process hosts its node, reports its
address, and learns every other node's from the parent before it opens its client.
Processes start with the ``spawn`` method: nothing but the arguments below is inherited,
no connection, no thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ...strategies.base import (
    ClientNode,
    HostedStrategy,
    Message,
    Mode,
    Node,
    Replica,
    ReplicatedStrategy,
    ServiceStrategy,
    SharedStrategy,
    Strategy,
)
from ..latency import LatencyRecorder
from ..servers import reaper
from ..workload import Workload

if TYPE_CHECKING:
    from ..servers.nodes import NodeServer
from .base import (
    REPLAYED,
    Call,
    Driver,
    DriverError,
    Work,
    WorkerOps,
    bind,
    chunks_per_interval,
    client_sync,
    no_sync,
    node_stats,
)

CONTEXT = multiprocessing.get_context("spawn")


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Start child processes with SIGINT ignored (the disposition survives exec): Ctrl-C
    reaches the whole terminal group, and a child hit while still starting Python would
    print a traceback. The parent stops its children itself (:meth:`ProcessDriver.close`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


START_TIMEOUT = 60.0


class _Marker:
    """Sent after a settling replica's state: everything its sender sent before has arrived."""

    __slots__ = ("src",)

    def __init__(self, src: int) -> None:
        self.src = src


class _Peer:
    """One process's replica and its mailboxes (runs in the child)."""

    def __init__(self, index: int, replica: Replica, inboxes: list[Any]) -> None:
        self.index, self.replica, self.inboxes = index, replica, inboxes

    def send(self, messages: list[Message]) -> None:
        for message in messages:
            targets = range(len(self.inboxes)) if message.dst is None else (message.dst,)
            for dst in targets:
                if dst != self.index:
                    self.inboxes[dst].put(message)

    def sync(self, _user: str, now: float) -> None:
        self.send(self.replica.sync(now))
        inbox = self.inboxes[self.index]
        while True:
            try:
                message = inbox.get_nowait()
            except queue.Empty:
                return
            self._apply(message, now)

    def settle(self, now: float) -> None:
        self.send(self.replica.sync(now))
        for dst, inbox in enumerate(self.inboxes):
            if dst != self.index:
                inbox.put(_Marker(self.index))
        waiting = len(self.inboxes) - 1
        inbox = self.inboxes[self.index]
        while waiting:
            message = inbox.get(timeout=START_TIMEOUT)
            if isinstance(message, _Marker):
                waiting -= 1
            else:
                self._apply(message, now)

    def _apply(self, message: Message | _Marker, now: float) -> None:
        if isinstance(message, Message):
            self.send(self.replica.receive(message, now))


def _child(
    index: int,
    strategy: Strategy,
    shared: Node | None,
    workload: Workload,
    horizon: float,
    inboxes: list[Any],
    conn: Connection,
    namespace: str,
    record_latency: bool,
) -> None:
    client: ClientNode | None = None
    server: NodeServer | None = None
    streams = {name: workload.stream(name, index) for name in REPLAYED}
    try:
        peer: _Peer | None = None
        sync: Call = no_sync
        if shared is not None:
            node: Node = shared
        elif isinstance(strategy, ServiceStrategy):
            client = strategy.client(namespace, index)
            node = client
            sync = client_sync(client)
        elif isinstance(strategy, HostedStrategy):
            from ..servers.nodes import NodeServer

            host = strategy.host(index, namespace)
            server = NodeServer(host.requests)
            conn.send(("address", server.address))
            command, peers = conn.recv()
            if command != "peers":
                return
            client = strategy.client(host, peers, index)
            node = client
            sync = client_sync(client)
        else:
            assert isinstance(strategy, ReplicatedStrategy)
            replica = strategy.replica(index)
            node = replica
            peer = _Peer(index, replica, inboxes)
            sync = peer.sync
        recorder = LatencyRecorder(workload.spec.arrivals_for(index)) if record_latency else None
        ops = WorkerOps(
            workload,
            {name: bind(streams[name], node, sync, recorder) for name in REPLAYED},
            chunks_per_interval(workload, type(strategy).syncs),
        )
        conn.send(("ready", None))
        while True:
            command, *args = conn.recv()
            if command == "run":
                ops.do(args[0], horizon)
                conn.send(("done", None))
            elif command == "settle":
                if peer is not None:
                    peer.settle(args[0])
                if client is not None:
                    client.sync(args[0])
                    client.sync(args[0])
                conn.send(("done", None))
            elif command == "count":
                conn.send(("count", node.count(args[0])))
            elif command == "latency":
                conn.send(("latency", recorder.encode() if recorder else {}))
            elif command == "stats":
                conn.send(("stats", node_stats([node])))
            else:
                return
    except KeyboardInterrupt:
        return
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if server is not None:
            with contextlib.suppress(Exception):
                server.close()


class ProcessDriver(Driver):
    mode = Mode.PROCESS

    def start(self) -> None:
        strategy = self.strategy
        shared = strategy.open(self.mode) if isinstance(strategy, SharedStrategy) else None
        one_each = isinstance(strategy, ReplicatedStrategy | HostedStrategy)
        if one_each and strategy.config.nodes != self.workers:
            raise DriverError(
                f"process mode runs one node per worker: nodes ({strategy.config.nodes}) "
                f"must equal workers ({self.workers})"
            )
        self._inboxes = [CONTEXT.Queue() for _ in range(self.workers)]
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for w in range(self.workers):
            parent, child = CONTEXT.Pipe()
            proc = CONTEXT.Process(
                target=_child,
                args=(
                    w,
                    strategy,
                    shared,
                    self.workload,
                    self.horizon,
                    self._inboxes,
                    child,
                    self.namespace,
                    self.record_latency,
                ),
                name=f"countbench-node-{w}",
                daemon=True,
            )
            with sigint_ignored():
                proc.start()
            reaper.watch(proc.pid)
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        if isinstance(strategy, HostedStrategy):
            self._broadcast("peers", self._gather("address", timeout=START_TIMEOUT))
        self._gather("ready", timeout=START_TIMEOUT)

    def _gather(self, expected: str, timeout: float | None = None) -> list[Any]:
        answers = []
        for w, conn in enumerate(self._conns):
            if timeout is not None and not conn.poll(timeout):
                raise DriverError(f"worker process {w} did not answer within {timeout:.0f} s")
            try:
                kind, value = conn.recv()
            except EOFError:
                raise DriverError(f"worker process {w} exited unexpectedly") from None
            if kind == "error":
                raise DriverError(f"worker process {w} failed: {value}")
            if kind != expected:
                raise DriverError(f"worker process {w} answered {kind!r}, not {expected!r}")
            answers.append(value)
        return answers

    def _broadcast(self, *command: object) -> None:
        for conn in self._conns:
            conn.send(command)

    def _run(self, work: Work) -> float:
        start = time.perf_counter()
        self._broadcast("run", work)
        self._running = True  # until every worker answered: see close()
        self._gather("done")
        self._running = False
        return time.perf_counter() - start

    def settle(self) -> None:
        self._broadcast("settle", self.now())
        self._gather("done", timeout=START_TIMEOUT)

    def counts(self) -> list[int]:
        self._broadcast("count", self.now())
        counts = [int(c) for c in self._gather("count", timeout=START_TIMEOUT)]
        return counts[:1] if isinstance(self.strategy, SharedStrategy) else counts

    def latencies(self) -> list[dict[str, bytes]]:
        self._broadcast("latency")
        return list(self._gather("latency", timeout=START_TIMEOUT))

    def node_stats(self) -> list[dict[str, float]]:
        self._broadcast("stats")
        return [s for found in self._gather("stats", timeout=START_TIMEOUT) for s in found]

    def close(self) -> None:
        # Left in the middle of a run (Ctrl-C, a failure): the workers are busy with work
        # no one waits for (an open loop's may take minutes); they are killed at once.
        abandoned = getattr(self, "_running", False)
        for conn in getattr(self, "_conns", []):
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for proc in getattr(self, "_procs", []):
            if abandoned:
                proc.kill()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            reaper.forget(proc.pid)
        for inbox in getattr(self, "_inboxes", []):
            inbox.cancel_join_thread()
            inbox.close()
        for conn in getattr(self, "_conns", []):
            conn.close()
        self._procs, self._conns, self._inboxes = [], [], []
