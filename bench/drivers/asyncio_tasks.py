"""The asyncio driver: W tasks on one event loop, each a client of one node.

In-process nodes answer synchronously, so a task would never give the loop up; each task
yields (``await asyncio.sleep(0)``) after every batch of ``YIELD_EVERY`` operations, so the
tasks interleave the way clients of one server do. Replicated strategies get
``config.nodes`` replicas, shared by tasks without locks (one thread). Service strategies
give each task its own asyncio client; their calls await the network and yield by
themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from ...strategies.base import AsyncClientNode, Mode, ServiceStrategy
from ..latency import LatencyRecorder
from .base import (
    STREAMS,
    AsyncBoundOp,
    BoundOp,
    Driver,
    DriverError,
    StreamName,
    WorkerNodes,
    bind,
    bind_async,
    node_stats,
    replay,
    replay_async,
)

YIELD_EVERY = 100


def _batches(ops: list[BoundOp]) -> list[list[BoundOp]]:
    return [ops[i : i + YIELD_EVERY] for i in range(0, len(ops), YIELD_EVERY)]


class AsyncioDriver(Driver):
    mode = Mode.ASYNCIO

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self.nodes = WorkerNodes(self.strategy, self.mode, self.namespace)
        self._recorders = [
            LatencyRecorder() if self.record_latency else None for _ in range(self.workers)
        ]
        self._clients: list[AsyncClientNode] = []
        self._async_ops: list[dict[StreamName, list[AsyncBoundOp]]] = []
        self._batches: list[dict[StreamName, list[list[BoundOp]]]] = []
        if isinstance(self.strategy, ServiceStrategy):
            self._call(self._open_clients(self.strategy))
            return
        for w in range(self.workers):
            node, sync = self.nodes.node_for(w)
            recorder = self._recorders[w]
            self._batches.append(
                {
                    name: _batches(bind(getattr(self.workload, name)[w], node, sync, recorder))
                    for name in STREAMS
                }
            )

    async def _open_clients(self, strategy: ServiceStrategy) -> None:
        for w in range(self.workers):
            client = await strategy.async_client(self.namespace, w)
            self._clients.append(client)
            recorder = self._recorders[w]
            self._async_ops.append(
                {
                    name: bind_async(getattr(self.workload, name)[w], client, recorder)
                    for name in STREAMS
                }
            )

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            self._loop.run_until_complete(coroutine)
        except (OSError, RuntimeError) as exc:
            raise DriverError(f"an asyncio worker failed: {exc}") from exc

    async def _task(self, batches: list[list[BoundOp]], first_pass: int, passes: int) -> None:
        for k in range(first_pass, first_pass + passes):
            for batch in batches:
                replay(batch, k, 1, self.horizon)
                await asyncio.sleep(0)

    async def _all(self, stream: StreamName, first_pass: int, passes: int) -> None:
        if self._async_ops:
            await asyncio.gather(
                *(
                    replay_async(ops[stream], first_pass, passes, self.horizon)
                    for ops in self._async_ops
                )
            )
        else:
            await asyncio.gather(
                *(self._task(b[stream], first_pass, passes) for b in self._batches)
            )

    def _run(self, stream: StreamName, first_pass: int, passes: int) -> float:
        start = time.perf_counter()
        self._call(self._all(stream, first_pass, passes))
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
