"""The asyncio driver: W tasks on one event loop, each a client of one node.

In-process nodes answer synchronously, so a task would never give the loop up; each task
yields (``await asyncio.sleep(0)``) after every batch of ``YIELD_EVERY`` operations, so the
tasks interleave the way clients of one server do. Replicated strategies get
``config.nodes`` replicas, shared by tasks without locks (one thread). Service strategies
give each task its own asyncio client; their calls await the network and yield by
themselves. Hosted strategies host every node in this process (its server in a thread of
its own) and give each task an asyncio client on its node: writes are plain calls, reads
await the other nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from ...strategies.base import AsyncClientNode, HostedStrategy, Mode, ServiceStrategy
from ..latency import LatencyRecorder
from .base import (
    REPLAYED,
    STREAMS,
    Driver,
    DriverError,
    ReplayName,
    Work,
    WorkerNodes,
    bind,
    bind_async,
    chunk_cycle,
    node_stats,
    replay,
    replay_async,
    split_chunks,
)

YIELD_EVERY = 100


def unpaced(names: list[str]) -> str:
    """Why an open loop (``--rate``) cannot pace these in-process strategies in asyncio
    mode: their calls are plain ones on the loop, so a worker waiting for its next intended
    start would hold up every other worker's calls."""
    return (
        f"--rate in asyncio mode paces networked strategies only, not {', '.join(names)} "
        "(in-process: use --mode thread or process)"
    )


class AsyncioDriver(Driver):
    mode = Mode.ASYNCIO

    def start(self) -> None:
        networked = isinstance(self.strategy, ServiceStrategy | HostedStrategy)
        if self.record_latency and self.workload.spec.rate and not networked:
            raise DriverError(unpaced([self.strategy.name]))
        self._loop = asyncio.new_event_loop()
        self.nodes = WorkerNodes(self.strategy, self.mode, self.namespace)
        self._recorders = [
            LatencyRecorder(self.workload.spec.arrivals_for(w)) if self.record_latency else None
            for w in range(self.workers)
        ]
        self._clients: list[AsyncClientNode] = []
        self._ops: list[dict[ReplayName, list[Any]]] = []
        if networked:
            self._call(self._open_clients())
        else:
            for w in range(self.workers):
                node, sync = self.nodes.node_for(w)
                recorder = self._recorders[w]
                self._ops.append(
                    {
                        name: bind(self.workload.stream(name, w), node, sync, recorder)
                        for name in REPLAYED
                    }
                )
        size = self.workload.spec.sync_every
        self._chunks: list[dict[ReplayName, list[list[Any]]]] = [
            {
                name: split_chunks(
                    worker[name], chunk_cycle(self.workload, name), size, self.per_interval
                )
                for name in STREAMS
            }
            for worker in self._ops
        ]

    async def _open_clients(self) -> None:
        for w in range(self.workers):
            client = await self.nodes.async_client(w)
            self._clients.append(client)
            recorder = self._recorders[w]
            self._ops.append(
                {
                    name: bind_async(self.workload.stream(name, w), client, recorder)
                    for name in REPLAYED
                }
            )

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            self._loop.run_until_complete(coroutine)
        except (OSError, RuntimeError) as exc:
            raise DriverError(f"an asyncio worker failed: {exc}") from exc

    def _units(self, worker: int, work: Work) -> list[tuple[list[Any], int]]:
        """(operations, pass number for the time shift) for each pass or chunk of work."""
        if work.base is None:
            ops = self._ops[worker][work.stream]
            return [(ops, k) for k in range(work.first, work.first + work.count)]
        chunks = self._chunks[worker][work.stream]
        n = len(chunks)
        return [
            (chunks[i % n], work.base + i // n) for i in range(work.first, work.first + work.count)
        ]

    async def _task(self, worker: int, work: Work) -> None:
        # Operations since the last yield, counted across chunks: a yield every YIELD_EVERY
        # operations however short the chunks are (a chunk may be a twentieth of an interval).
        pending = 0
        for ops, k in self._units(worker, work):
            if self._clients:  # service clients await the network: they yield by themselves
                await replay_async(ops, k, 1, self.horizon)
                continue
            start = 0
            while start < len(ops):
                batch = ops[start : start + YIELD_EVERY - pending]
                replay(batch, k, 1, self.horizon)
                start += len(batch)
                pending += len(batch)
                if pending >= YIELD_EVERY:
                    await asyncio.sleep(0)
                    pending = 0

    async def _all(self, work: Work) -> None:
        await asyncio.gather(*(self._task(w, work) for w in range(self.workers)))

    def _run(self, work: Work) -> float:
        start = time.perf_counter()
        self._call(self._all(work))
        return time.perf_counter() - start

    def settle(self) -> None:
        self.nodes.settle(self.now())
        now = self.now()

        async def sync_all() -> None:
            for _ in range(2):  # as WorkerNodes.settle: all writes out before any view refresh
                for client in self._clients:
                    await client.sync(now)

        self._call(sync_all())

    def counts(self) -> list[int]:
        if not self._clients:
            return self.nodes.counts(self.now())
        now = self.now()
        counts: list[int] = []

        async def count_all() -> None:
            counts.extend([await client.count(now) for client in self._clients])

        self._call(count_all())
        return counts

    def latencies(self) -> list[dict[str, bytes]]:
        return [r.encode() for r in self._recorders if r is not None]

    def node_stats(self) -> list[dict[str, float]]:
        return node_stats(self._clients) or self.nodes.stats()

    def close(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is None or loop.is_closed():
            return

        async def close_all() -> None:
            for client in self._clients:
                await client.close()

        try:
            loop.run_until_complete(close_all())
        finally:
            self._clients = []
            if hasattr(self, "nodes"):
                self.nodes.close()
            loop.close()
