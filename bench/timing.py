"""Timing through pyperf: one Runner per countbench process, worker processes, calibration.

The CLI process is pyperf's *manager*: for each benchmark it spawns worker processes as
``python -m countbench.bench.pyperf_worker --countbench-plan JSON <pyperf worker args>``.
Each worker builds the plan's workload (deterministic by seed), starts the driver once,
and pyperf calls :class:`TimedStream` with a calibrated number of loops. One loop is one
chunk of every worker's stream, i.e. one sync interval (``sync_every`` client operations
and the sync after them), so a loop is short for a Redis strategy as for an in-process
one; ``inner_loops`` is the number of client operations in a loop over all workers, so
pyperf's values are seconds per client operation (aggregate over workers) and ops/s is
their reciprocal.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import statistics
import subprocess
from argparse import Namespace
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pyperf

from .drivers import Driver
from .drivers.base import chunk_ops
from .plan import Benchmark, Plan

WORKER_MODULE = "countbench.bench.pyperf_worker"
PLAN_OPTION = "--countbench-plan"


class Preset(StrEnum):
    QUICK = "quick"  # countbench's default: 1 process x 5 values, 50 ms minimum per value
    FAST = "fast"  # pyperf's --fast
    RIGOROUS = "rigorous"  # pyperf's --rigorous
    SMOKE = "smoke"  # pyperf's --debug-single-value: one process, one value; for checks


def runner_settings(preset: Preset) -> tuple[dict[str, Any], list[str]]:
    """Runner constructor keywords and extra pyperf arguments for ``preset``."""
    if preset is Preset.QUICK:
        # Starting a worker process costs more than its values here (about 0.4 s), so the
        # quick preset spends one process, plus pyperf's calibration run, per benchmark.
        return {"processes": 1, "values": 5, "warmups": 1, "min_time": 0.05}, []
    if preset is Preset.SMOKE:
        return {}, ["--debug-single-value"]
    return {}, [f"--{preset}"]


class TimedStream:
    """pyperf's time function for one benchmark, run inside a pyperf worker process.

    The driver is started on the first call (untimed) and kept for the later calls; the
    ``reads`` benchmark first fills the nodes with one untimed pass of the mixed stream.
    """

    def __init__(self, plan: Plan, benchmark: Benchmark) -> None:
        self.plan, self.benchmark = plan, benchmark
        self.driver: Driver | None = None

    def __call__(self, loops: int) -> float:
        if self.driver is None:
            tag = f"{self.benchmark.stream}-{os.getpid()}"
            self.driver = self.plan.driver(self.benchmark.strategy, tag)
            self.driver.start()
            if self.benchmark.stream == "reads":
                self.driver.run("mixed", 1)
        return self.driver.run_chunks(self.benchmark.stream, loops)

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()


def register(
    runner: pyperf.Runner,
    plan: Plan,
    before: Callable[[Benchmark], None] = lambda _: None,
    after: Callable[[Benchmark, pyperf.Benchmark | None], None] = lambda *_: None,
) -> list[TimedStream]:
    """Hand every benchmark of the plan to pyperf, in the plan's order.

    In the manager this runs each benchmark (spawning workers); in a worker, pyperf runs
    only the one its ``--worker-task`` names and skips the others.
    """
    timers = []
    for benchmark in plan.benchmarks():
        timer = TimedStream(plan, benchmark)
        timers.append(timer)
        inner = chunk_ops(plan.workload, benchmark.stream)
        before(benchmark)
        result = runner.bench_time_func(benchmark.name, timer, inner_loops=max(inner, 1))
        after(benchmark, result)
    return timers


@dataclass
class Timing:
    """The figures countbench reports for one pyperf benchmark."""

    name: str
    values: list[float]  # seconds per client operation, one per measured value
    loops: int
    inner_loops: int
    warnings: list[str] = field(default_factory=list)
    pyperf_json: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def ops_per_sec(self) -> float:
        return 1.0 / self.mean if self.mean > 0 else math.inf

    @property
    def ops_per_sec_stdev(self) -> float:
        # First-order propagation of the stdev of t through 1/t.
        return self.stdev / (self.mean**2) if self.mean > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "unit": "seconds per operation",
            "values": self.values,
            "mean": self.mean,
            "stdev": self.stdev,
            "ops_per_sec": self.ops_per_sec,
            "ops_per_sec_stdev": self.ops_per_sec_stdev,
            "loops": self.loops,
            "inner_loops": self.inner_loops,
            "warnings": self.warnings,
            "pyperf": self.pyperf_json,
        }

    @classmethod
    def from_pyperf(cls, bench: pyperf.Benchmark) -> Timing:
        from pyperf._cli import format_checks  # pyperf's own stability checks

        buffer = io.StringIO()
        bench.dump(buffer, compact=True)
        return cls(
            name=bench.get_name(),
            values=list(bench.get_values()),
            loops=int(bench.get_loops()),
            inner_loops=int(bench.get_inner_loops()),
            warnings=[line[2:] for line in format_checks(bench) if line.startswith("* ")],
            pyperf_json=json.loads(buffer.getvalue()),
        )


def pyperf_arguments(plan: Plan, preset: Preset) -> list[str]:
    """pyperf's arguments: quiet, the plan, the preset, and the COUNTBENCH_* variables
    (the plan's endpoints among them) that workers must inherit."""
    _, extra = runner_settings(preset)
    inherit = sorted({*plan.environment(), *(n for n in os.environ if n.startswith("COUNTBENCH_"))})
    return ["--quiet", PLAN_OPTION, plan.to_json(), *extra, "--inherit-environ", ",".join(inherit)]


def _add_plan(cmd: list[str], args: Namespace) -> None:
    cmd.extend((PLAN_OPTION, args.countbench_plan))


def make_runner(preset: Preset) -> pyperf.Runner:
    """A Runner for one plan. pyperf allows one Runner per class and process (its guard
    against registering benchmarks twice); a ``--param`` scan times one plan per point in
    the same process, so each plan gets a Runner of a fresh subclass."""
    kwargs, _ = runner_settings(preset)
    runner_class: type[pyperf.Runner] = type("PlanRunner", (pyperf.Runner,), {})
    runner = runner_class(program_args=("-m", WORKER_MODULE), add_cmdline_args=_add_plan, **kwargs)
    runner.argparser.add_argument(PLAN_OPTION, dest="countbench_plan", required=True)
    return runner


class _WorkersInTheirOwnGroup:
    """Stands in for the ``subprocess`` module inside pyperf's manager, so that its worker
    processes start in a process group of their own. A terminal's Ctrl-C goes to its
    foreground group: a worker hit while Python itself is still starting would print a
    fatal error and a traceback. This way only the manager, countbench, takes the Ctrl-C,
    and pyperf kills the worker it was waiting for."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a worker so that no Ctrl-C can orphan it: the child is forked with SIGINT
        blocked (between fork and its setpgid it is still in our group), and a Ctrl-C that
        arrives here meanwhile is held until the worker exists, which is then killed before
        the interrupt goes on (pyperf only kills workers it has been handed)."""
        kwargs.setdefault("process_group", 0)
        interrupted: list[int] = []
        handler = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        try:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                proc = subprocess.Popen(*args, **kwargs)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            held = bool(interrupted)  # a pending SIGINT has reached the recorder by now
        finally:
            signal.signal(signal.SIGINT, handler)
        if held:
            proc.kill()
            proc.wait()
            raise KeyboardInterrupt
        return proc


@contextlib.contextmanager
def _workers_in_their_own_group() -> Iterator[None]:
    import pyperf._manager as manager

    manager.subprocess = _WorkersInTheirOwnGroup()
    try:
        yield
    finally:
        manager.subprocess = subprocess


def time_plan(
    plan: Plan,
    preset: Preset,
    before: Callable[[Benchmark], None] = lambda _: None,
    after: Callable[[Benchmark, Timing], None] = lambda *_: None,
) -> dict[str, Timing]:
    """Time every benchmark of ``plan`` with pyperf; results by benchmark name."""
    runner = make_runner(preset)
    runner.parse_args(pyperf_arguments(plan, preset))
    timings: dict[str, Timing] = {}
    environment = plan.environment()
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)

    def collect(benchmark: Benchmark, result: pyperf.Benchmark | None) -> None:
        if result is None:
            raise RuntimeError(f"pyperf returned no result for {benchmark.name}")
        timings[benchmark.name] = Timing.from_pyperf(result)
        after(benchmark, timings[benchmark.name])

    said = io.StringIO()
    try:
        # pyperf prints its progress and results on stdout, and its own errors on stderr;
        # countbench shows its own, and turns pyperf's exits into exceptions.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(said),
            _workers_in_their_own_group(),
        ):
            register(runner, plan, before, collect)
    except SystemExit as exc:
        message = " ".join(said.getvalue().split())
        if "interrupted" in message:
            raise KeyboardInterrupt from None
        raise RuntimeError(f"pyperf stopped (status {exc.code}): {message}") from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return timings
