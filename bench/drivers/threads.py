"""The thread driver: W threads in this process, each a client of one node.

Shared strategies give every thread the same node. Replicated strategies get
``config.nodes`` replicas; thread ``w`` is a client of replica ``w % nodes``, each replica is
entered under its own lock, and at every sync point a thread makes its replica send its
state, which the router delivers to the other replicas at once. Service strategies: each
thread opens its own client connection, inside the thread.
"""

from __future__ import annotations

import queue
import threading
import time

from ...strategies.base import Mode
from ..latency import LatencyRecorder
from .base import REPLAYED, Driver, DriverError, Work, WorkerNodes, WorkerOps, bind

_Command = Work | None
START_TIMEOUT = 60.0


class ThreadDriver(Driver):
    mode = Mode.THREAD

    def start(self) -> None:
        self.nodes = WorkerNodes(self.strategy, self.mode, self.namespace)
        self._recorders = [
            LatencyRecorder(self.workload.spec.arrivals_for(w)) if self.record_latency else None
            for w in range(self.workers)
        ]
        self._commands: list[queue.SimpleQueue[_Command]] = [
            queue.SimpleQueue() for _ in range(self.workers)
        ]
        self._done: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._worker, args=(w,), name=f"countbench-{w}", daemon=True)
            for w in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        self._gather(timeout=START_TIMEOUT)

    def _worker(self, index: int) -> None:
        commands = self._commands[index]
        try:
            node, sync = self.nodes.node_for(index)
            recorder = self._recorders[index]
            ops = WorkerOps(
                self.workload,
                {
                    name: bind(self.workload.stream(name, index), node, sync, recorder)
                    for name in REPLAYED
                },
                self.per_interval,
            )
        except BaseException as exc:
            self._done.put(exc)
            return
        self._done.put(None)
        while (work := commands.get()) is not None:
            try:
                ops.do(work, self.horizon)
            except BaseException as exc:
                self._done.put(exc)
            else:
                self._done.put(None)

    def _gather(self, timeout: float | None = None) -> None:
        failures = []
        for _ in self._threads:
            try:
                answer = self._done.get(timeout=timeout)
            except queue.Empty:
                raise DriverError(f"a worker thread did not answer within {timeout} s") from None
            if answer is not None:
                failures.append(answer)
        if failures:
            raise DriverError(f"a worker thread failed: {failures[0]}") from failures[0]

    def _run(self, work: Work) -> float:
        start = time.perf_counter()
        for commands in self._commands:
            commands.put(work)
        self._gather()
        return time.perf_counter() - start

    def settle(self) -> None:
        self.nodes.settle(self.now())

    def counts(self) -> list[int]:
        return self.nodes.counts(self.now())

    def latencies(self) -> list[dict[str, bytes]]:
        return [r.encode() for r in self._recorders if r is not None]

    def node_stats(self) -> list[dict[str, float]]:
        return self.nodes.stats()

    def close(self) -> None:
        for recorder in getattr(self, "_recorders", []):
            if recorder is not None:
                recorder.stop()  # a worker waiting for an open loop's next start gives up
        for commands in getattr(self, "_commands", []):
            commands.put(None)
        for thread in getattr(self, "_threads", []):
            thread.join(timeout=10)
        self._threads = []
        if hasattr(self, "nodes"):
            self.nodes.close()
