"""A run plan: which strategies, in which mode, on which workload; shared by the CLI process
and the pyperf worker processes (it travels to them as one JSON command-line argument).

Both sides enumerate the plan's benchmarks in the same order, which is how a pyperf worker
started with ``--worker-task=i`` knows which benchmark is its ``i``-th.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..strategies.base import Mode, ServiceStrategy, Strategy, StrategyConfig
from ..strategies.registry import discover
from .drivers import STREAMS, Driver, StreamName, make_driver
from .drivers.base import chunk_ops, chunks_per_interval
from .workload import Workload, WorkloadSpec, build


@dataclass(frozen=True)
class Benchmark:
    """One timed benchmark: a strategy, one of its streams, a mode and a worker count."""

    strategy: str
    stream: StreamName
    mode: Mode
    workers: int

    @property
    def name(self) -> str:
        return f"{self.strategy}.{self.stream}.{self.mode}.w{self.workers}"


#: Server URLs travel to pyperf workers in the environment, not on their command line
#: (where any user of the machine could read a password).
ENDPOINTS_ENV = "COUNTBENCH_ENDPOINTS"
#: A file holding the plan's workload, pickled by the CLI process (see :meth:`Plan.save_workload`):
#: a pyperf worker loads it in milliseconds instead of generating the workload again (about
#: half a second). Only :meth:`Plan.from_json`, i.e. a worker, reads it.
WORKLOAD_ENV = "COUNTBENCH_WORKLOAD_FILE"


@dataclass(frozen=True)
class Plan:
    strategies: tuple[str, ...]
    mode: Mode
    spec: WorkloadSpec
    run_id: str = "adhoc"
    #: Service name ("redis", "central") -> URL of the server the run uses.
    endpoints: Mapping[str, str] = field(default_factory=dict)
    #: The streams timed, in this order (all three unless a gate measures fewer).
    streams: tuple[StreamName, ...] = STREAMS
    #: A slowdown injected by the harness around every timed loop (0.1: each loop then
    #: takes 10 % longer, burning CPU); for measuring what a gate detects, never in a
    #: real report's figures.
    slowdown: float = 0.0

    def benchmarks(self) -> list[Benchmark]:
        return [
            Benchmark(name, stream, self.mode, self.spec.workers)
            for name in self.strategies
            for stream in self.streams
        ]

    def to_json(self) -> str:
        return json.dumps(
            {
                "strategies": list(self.strategies),
                "mode": str(self.mode),
                "spec": self.spec.to_dict(),
                "run_id": self.run_id,
                "streams": list(self.streams),
                "slowdown": self.slowdown,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        plan = cls(
            tuple(data["strategies"]),
            Mode(data["mode"]),
            WorkloadSpec().with_overrides(data["spec"]),
            data["run_id"],
            json.loads(os.environ.get(ENDPOINTS_ENV, "{}")),
            tuple(data.get("streams", STREAMS)),
            float(data.get("slowdown", 0.0)),
        )
        saved = os.environ.get(WORKLOAD_ENV)
        if saved:
            workload = _load_workload(Path(saved))
            if workload is not None and workload.spec == plan.spec:
                plan.__dict__["workload"] = workload  # what cached_property would store
        return plan

    def environment(self) -> dict[str, str]:
        """What pyperf workers must inherit for :meth:`from_json` to rebuild this plan."""
        return {ENDPOINTS_ENV: json.dumps(dict(self.endpoints))}

    def save_workload(self, path: Path) -> dict[str, str]:
        """Write the workload where workers can load it (a private folder of this run's);
        return the variable that tells them where."""
        path.write_bytes(pickle.dumps(self.workload, protocol=pickle.HIGHEST_PROTOCOL))
        return {WORKLOAD_ENV: str(path)}

    @cached_property
    def workload(self) -> Workload:
        return build(self.spec)

    def strategy(self, name: str) -> Strategy:
        cls = discover()[name]
        endpoint = self.endpoints.get(cls.service, "") if issubclass(cls, ServiceStrategy) else ""
        config = StrategyConfig(
            nodes=self.spec.nodes,
            session_timeout=self.spec.session_timeout,
            endpoint=endpoint,
            pipeline=self.spec.pipeline,
        )
        return cls(config)

    def chunk_ops(self, benchmark: Benchmark) -> int:
        """Client operations in one timed loop of ``benchmark`` (pyperf's inner loops)."""
        syncs = discover()[benchmark.strategy].syncs
        per_interval = chunks_per_interval(self.workload, syncs)
        return chunk_ops(self.workload, benchmark.stream, per_interval)

    def namespace(self, name: str, tag: str) -> str:
        """Where one driver of strategy ``name`` keeps its state on a shared server."""
        return f"countbench:{self.run_id}:{name}:{tag}:"

    def driver(self, name: str, tag: str, record_latency: bool = False) -> Driver:
        return make_driver(
            self.mode,
            self.strategy(name),
            self.workload,
            self.namespace(name, tag),
            record_latency,
        )


def _load_workload(path: Path) -> Workload | None:
    """The workload :meth:`Plan.save_workload` wrote, or None (then the worker builds it)."""
    try:
        workload = pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    return workload if isinstance(workload, Workload) else None
