"""Timing through pyperf: one Runner per countbench process, worker processes, calibration.

The CLI process is pyperf's *manager*: for each benchmark it spawns worker processes as
``python -m countbench.bench.pyperf_worker --countbench-plan JSON <pyperf worker args>``.
Each worker loads the plan's workload, starts a driver per benchmark once, and pyperf
calls :class:`TimedStream` with a calibrated number of loops. One loop is one chunk of
every worker's stream, i.e. one sync interval (``sync_every`` client operations and the
sync after them), or an equal part of one for a strategy whose syncs do no work
(``drivers.base.chunks_per_interval``), so a loop is short for a Redis strategy as for an
in-process one; ``inner_loops`` is the number of client operations in a loop over all workers, so
pyperf's values are seconds per client operation (aggregate over workers) and ops/s is
their reciprocal.

With the quick and ci presets there is no calibration run (pyperf's: a worker process of
its own per benchmark, timing as many values as the real run), and one worker process
times all of a strategy's streams, one after the other, each on a driver of its own
(:func:`time_group`): a worker process costs more to start than the quick preset's values
take. The manager starts each with ``--countbench-group N`` (benchmarks ``--worker-task``
to ``--worker-task + N - 1``); for each, once its driver is started, the worker times a
few loops itself (:meth:`TimedStream.calibrate`), sets pyperf's loop count from them, and
has pyperf's own worker task time the warm-ups and values; it sends the N benchmarks
back on pyperf's pipe, one pyperf run each, and the manager merges each benchmark's runs
over the processes as pyperf's manager does. pyperf still does all the timing, the
statistics and the JSON; only the loop count comes from countbench's measurement, made in
the same process and on the same driver state as the values. ``--fast``, ``--rigorous``
(and ``--smoke``, one loop) keep pyperf's own manager and calibration: one worker process
per benchmark.
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
import sys
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyperf

from ..reports.samples import Estimate, estimate
from .drivers import Driver, StreamName
from .plan import Benchmark, Plan
from .presets import Preset
from .servers import reaper

WORKER_MODULE = "countbench.bench.pyperf_worker"
PLAN_OPTION = "--countbench-plan"
#: Asks a worker to time N benchmarks from its --worker-task on, measuring each loop count
#: itself (quick and ci presets; see time_group).
GROUP_OPTION = "--countbench-group"
#: Asks a worker to time its --worker-task's benchmark, measuring its loop count itself:
#: what workers of countbench before the groups understand, used when the workers run
#: another interpreter (an A/B comparison with another checkout's venv).
CALIBRATE_OPTION = "--countbench-calibrate"


#: The quick preset's shortest value, in seconds: what a loop count is chosen to reach.
QUICK_MIN_TIME = 0.05


#: Each preset's pyperf settings (Runner keywords). QUICK and CI measure loop counts in
#: each worker (see TimedStream.calibrate); FAST and RIGOROUS are pyperf's own presets,
#: with its calibration run (and its default of one warm-up value).
PRESET_SETTINGS: dict[Preset, dict[str, Any]] = {
    # Starting a worker process costs more than its values here (about 0.2 s), so the
    # quick preset spends one process per strategy: no interval, which needs several.
    Preset.QUICK: {"processes": 1, "values": 5, "warmups": 1, "min_time": QUICK_MIN_TIME},
    # 9: the fewest whose [min, max] holds a rerun's median 95% of the time (samples.py)
    Preset.CI: {"processes": 9, "values": 2, "warmups": 1, "min_time": QUICK_MIN_TIME},
    Preset.FAST: {"processes": 10, "values": 2, "min_time": 0.1},
    Preset.RIGOROUS: {"processes": 40, "values": 3, "min_time": 0.1},
    Preset.SMOKE: {},
}
SELF_CALIBRATED = (Preset.QUICK, Preset.CI)
#: How timing is done, recorded in a report so that ``diff`` can say when two reports were
#: timed differently: 1 (reports without it): a worker process per benchmark, loops of
#: whole sync intervals; 2: a strategy's streams in one worker process (quick and ci
#: presets), and loops of a part of a sync interval for strategies whose syncs do no work.
TIMING_METHOD = 2


@dataclass(frozen=True)
class Controls:
    """How pyperf times each benchmark: a preset, and what the user set over it (pyperf's
    own options: processes, values per process, warm-ups, minimum seconds per value, CPU
    affinity of the workers). ``python`` runs the workers with another interpreter (the
    other side of an A/B comparison of two environments)."""

    preset: Preset = Preset.QUICK
    processes: int | None = None
    values: int | None = None
    warmups: int | None = None
    min_time: float | None = None
    affinity: str | None = None
    python: str | None = None

    def overrides(self) -> dict[str, Any]:
        names = ("processes", "values", "warmups", "min_time")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def settings(self) -> dict[str, Any]:
        """The Runner keywords: the preset's, then the user's."""
        return {**PRESET_SETTINGS[self.preset], **self.overrides()}

    @property
    def self_calibrated(self) -> bool:
        return self.preset in SELF_CALIBRATED

    @property
    def grouped(self) -> bool:
        """Whether a worker process times all of a strategy's streams (see :func:`groups`):
        with the self-calibrated presets, unless the workers run another interpreter
        (``--python``: another checkout's workers may not know groups)."""
        return self.self_calibrated and not self.python

    def to_dict(self) -> dict[str, Any]:
        """What the report records: every setting pyperf used, where loops came from, and
        the timing method (:data:`TIMING_METHOD`), which ``diff`` compares."""
        return {
            "preset": str(self.preset),
            **self.settings(),
            "affinity": self.affinity,
            "calibration": "countbench" if self.self_calibrated else "pyperf",
            "python": self.python,
            "method": TIMING_METHOD,
        }


def runner_settings(controls: Controls) -> tuple[dict[str, Any], list[str]]:
    """Runner constructor keywords and extra pyperf arguments for ``controls``."""
    if controls.preset is Preset.SMOKE:
        return {}, ["--debug-single-value"]
    extra = [f"--affinity={controls.affinity}"] if controls.affinity else []
    if controls.python:
        extra.append(f"--python={controls.python}")
    if controls.self_calibrated:
        # pyperf needs a loop count to start a worker without its calibration: 1 here,
        # which the worker replaces with its own measurement (see TimedStream.calibrate).
        extra += ["--loops", "1"]
        if controls.python:
            extra.append(CALIBRATE_OPTION)
    return controls.settings(), extra


#: Most chunks a calibration probe runs at once (pyperf's own limit is 2**32 loops).
MAX_PROBE_CHUNKS = 2**20
#: Most timed runs of a calibration probe.
MAX_PROBE_RUNS = 8
#: A first chunk that takes this many times the shortest value makes one loop enough: a
#: first chunk can be several times slower than the next ones, rarely more (caches filled).
ONE_LOOP_FACTOR = 4


def loops_from_probe(driver: Driver, stream: StreamName, min_time: float) -> int:
    """Loops per value for ``stream``, measured on ``driver``: one chunk first, as a warm-up
    (one that takes ``ONE_LOOP_FACTOR * min_time`` even so makes one loop enough); then runs
    of about half ``min_time``, at least two, until one lasts that long (one chunk of twice
    ``min_time`` is enough). The loops are ``min_time`` over the fastest seconds per chunk
    seen: a stall of a loaded machine slows one run, not all."""
    first = driver.run_chunks(stream, 1)
    if first >= ONE_LOOP_FACTOR * min_time:
        return 1
    per_chunk = math.inf
    count = 1
    for run in range(MAX_PROBE_RUNS):
        elapsed = driver.run_chunks(stream, count)
        if elapsed > 0:
            per_chunk = min(per_chunk, elapsed / count)
        if (run >= 1 and elapsed >= min_time / 2) or elapsed >= 2 * min_time:
            break
        wanted = math.ceil(0.6 * min_time / per_chunk) if per_chunk < math.inf else count * 16
        count = max(1, min(wanted, count * 16, MAX_PROBE_CHUNKS))
    if per_chunk == math.inf:
        return count
    return max(1, math.ceil(min_time / per_chunk))


def burn(seconds: float) -> float:
    """Keep this CPU busy for ``seconds`` (the injected slowdown); return the time spent."""
    start = now = time.perf_counter()
    while now - start < seconds:
        now = time.perf_counter()
    return now - start


class TimedStream:
    """pyperf's time function for one benchmark, run inside a pyperf worker process.

    The driver is started on the first call (untimed) and kept for the later calls; the
    ``reads`` benchmark first fills the nodes with the writes of one untimed pass of the
    mixed stream (``Workload.fill``: its reads, often the slow part, change no count).
    """

    def __init__(self, plan: Plan, benchmark: Benchmark) -> None:
        self.plan, self.benchmark = plan, benchmark
        self.driver: Driver | None = None

    def __call__(self, loops: int) -> float:
        elapsed = self.started().run_chunks(self.benchmark.stream, loops)
        return elapsed + burn(self.plan.slowdown * elapsed) if self.plan.slowdown else elapsed

    def started(self) -> Driver:
        if self.driver is None:
            tag = f"{self.benchmark.stream}-{os.getpid()}"
            self.driver = self.plan.driver(self.benchmark.strategy, tag)
            self.driver.start()
            if self.benchmark.stream == "reads":
                self.driver.run("fill", 1)
        return self.driver

    def calibrate(self, min_time: float) -> int:
        """The quick preset's loops per value, measured here in the worker, on the driver
        pyperf's values then use (see :func:`loops_from_probe`)."""
        return loops_from_probe(self.started(), self.benchmark.stream, min_time)

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()


def register(
    runner: pyperf.Runner,
    plan: Plan,
    before: Callable[[Benchmark], None] = lambda _: None,
    after: Callable[[Benchmark, pyperf.Benchmark | None], None] = lambda *_: None,
) -> list[TimedStream]:
    """Hand every benchmark of the plan to pyperf, in the plan's order (pyperf's manager:
    a worker process per benchmark).

    In the manager this runs each benchmark (spawning workers); in a worker, pyperf runs
    only the one its ``--worker-task`` names and skips the others.
    """
    timers: list[TimedStream] = []
    try:
        for benchmark in plan.benchmarks():
            timer = TimedStream(plan, benchmark)
            timers.append(timer)
            inner = plan.chunk_ops(benchmark)
            before(benchmark)
            result = runner.bench_time_func(benchmark.name, timer, inner_loops=max(inner, 1))
            after(benchmark, result)
    except BaseException:
        for timer in timers:  # a worker's driver: its threads, processes and connections
            with contextlib.suppress(Exception):
                timer.close()
        raise
    return timers


def groups(plan: Plan, controls: Controls) -> list[list[Benchmark]]:
    """The benchmarks each worker process times: a strategy's streams together with the
    quick and ci presets (see :func:`time_group`), else one benchmark each; one each too
    when the workers run another interpreter (they take ``--countbench-calibrate``)."""
    found: list[list[Benchmark]] = []
    for benchmark in plan.benchmarks():
        if controls.grouped and found and found[-1][0].strategy == benchmark.strategy:
            found[-1].append(benchmark)
        else:
            found.append([benchmark])
    return found


class GroupError(RuntimeError):
    """A grouped worker failed on one benchmark; the message names it."""


def _task_func(timer: TimedStream) -> Callable[[Any, int], float]:
    """pyperf's task function (it passes the task, then the loops) for ``timer``."""
    return lambda _task, loops: timer(loops)


def time_group(runner: pyperf.Runner, plan: Plan, first: int, count: int) -> None:
    """In a worker process: time benchmarks ``first`` to ``first + count - 1`` of the plan,
    each on a fresh driver with its loop count measured here (:meth:`TimedStream.calibrate`)
    and its warm-ups and values timed by pyperf's own worker task, and send them to the
    manager as one suite on pyperf's pipe."""
    from pyperf._worker import WorkerProcessTask

    runner._cpu_affinity()  # pyperf's --affinity, as its own worker applies it
    results: list[pyperf.Benchmark] = []
    for benchmark in plan.benchmarks()[first : first + count]:
        timer = TimedStream(plan, benchmark)
        try:
            runner.args.loops = timer.calibrate(runner.args.min_time)
            task = WorkerProcessTask(runner, benchmark.name, _task_func(timer), None)
            task.inner_loops = max(plan.chunk_ops(benchmark), 1)
            results.append(pyperf.Benchmark((task.create_run(),)))
        except Exception as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise GroupError(f"{benchmark.name}: {reason}") from exc
        finally:
            timer.close()
    runner._display_result(pyperf.BenchmarkSuite(results), checks=False)


def _time_groups(
    runner: pyperf.Runner,
    plan: Plan,
    before: Callable[[list[Benchmark]], None],
    after: Callable[[Benchmark, pyperf.Benchmark | None], None],
    controls: Controls,
) -> None:
    """The manager's side of :func:`time_group`: for each group, ``processes`` worker
    processes, each timing the whole group; each benchmark's runs merged in order."""
    from pyperf._manager import Manager

    index = 0
    for group in groups(plan, controls):
        before(group)
        runner._worker_task = index  # pyperf's Manager passes it as --worker-task
        runner.args.countbench_group = len(group)
        manager = Manager(runner)
        merged: dict[str, pyperf.Benchmark] = {}
        for _ in range(runner.args.processes):
            suite = manager.spawn_worker(0, 0)
            if suite is None:
                raise RuntimeError("a pyperf worker process produced no JSON result")
            for bench in suite.get_benchmarks():
                if bench.get_name() not in merged:
                    merged[bench.get_name()] = bench
                    continue
                try:
                    merged[bench.get_name()].add_runs(bench)
                except ValueError as exc:  # e.g. runs of another unit or other metadata
                    raise RuntimeError(f"{bench.get_name()}: {exc}") from None
        for benchmark in group:
            after(benchmark, merged.get(benchmark.name))
        index += len(group)


@dataclass
class Timing:
    """The figures countbench reports for one pyperf benchmark."""

    name: str
    values: list[float]  # seconds per client operation, one per measured value
    loops: int
    inner_loops: int
    warnings: list[str] = field(default_factory=list)
    pyperf_json: dict[str, Any] = field(default_factory=dict)
    #: Where the loop count came from: "pyperf" (its calibration run) or "countbench"
    #: (measured by the worker itself, see TimedStream.calibrate).
    calibration: str = "pyperf"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def estimate(self) -> Estimate:
        """The figure from the worker processes (see :mod:`countbench.reports.samples`)."""
        return estimate({"pyperf": self.pyperf_json, "values": self.values})

    @property
    def ops_per_sec(self) -> float:
        return self.estimate.ops_per_sec

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "unit": "seconds per operation",
            "values": self.values,
            "mean": self.mean,
            "stdev": self.stdev,
            **self.estimate.to_dict(),
            "loops": self.loops,
            "inner_loops": self.inner_loops,
            "calibration": self.calibration,
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


def pyperf_arguments(plan: Plan, controls: Controls, names: list[str] | None = None) -> list[str]:
    """pyperf's arguments: quiet, the plan, the controls, and the COUNTBENCH_* variables
    (the plan's endpoints among them, and ``names``) that workers must inherit."""
    _, extra = runner_settings(controls)
    inherit = sorted(
        {
            *plan.environment(),
            *(names or ()),
            *(n for n in os.environ if n.startswith("COUNTBENCH_")),
        }
    )
    return ["--quiet", PLAN_OPTION, plan.to_json(), *extra, "--inherit-environ", ",".join(inherit)]


def _add_plan(cmd: list[str], args: Namespace) -> None:
    cmd.extend((PLAN_OPTION, args.countbench_plan))
    if args.countbench_group:
        cmd.extend((GROUP_OPTION, str(args.countbench_group)))
    if args.countbench_calibrate:
        cmd.append(CALIBRATE_OPTION)


_RUNNER_CLASSES: list[type[pyperf.Runner]] = []


def make_runner(controls: Controls) -> pyperf.Runner:
    """A Runner for one plan. pyperf allows one Runner per class and process (its guard
    against registering benchmarks twice); a ``--param`` scan times one plan per point in
    the same process, so each plan gets a Runner of a fresh subclass."""
    kwargs, _ = runner_settings(controls)
    runner_class: type[pyperf.Runner] = type("PlanRunner", (pyperf.Runner,), {})
    # pyperf keys its guard on id(class): a class collected after its plan would free its
    # id for the next one, which pyperf would then take for a second Runner.
    _RUNNER_CLASSES.append(runner_class)
    runner = runner_class(program_args=("-m", WORKER_MODULE), add_cmdline_args=_add_plan, **kwargs)
    runner.argparser.add_argument(PLAN_OPTION, dest="countbench_plan", required=True)
    runner.argparser.add_argument(GROUP_OPTION, dest="countbench_group", type=int, default=0)
    runner.argparser.add_argument(
        CALIBRATE_OPTION, dest="countbench_calibrate", action="store_true"
    )
    return runner


#: What a worker that fails prints first on its stderr (see pyperf_worker.py).
WORKER_PREFIX = "countbench worker: "


class WorkerFailed(RuntimeError):
    """A pyperf worker process failed; the message is its own reason, in one line."""


class _WorkersInTheirOwnGroup:
    """Stands in for the ``subprocess`` module inside pyperf's manager, so that its worker
    processes start in a process group of their own and their stderr goes to a file.

    A terminal's Ctrl-C goes to its foreground group: a worker hit while Python itself is
    still starting would print a fatal error and a traceback. This way only the manager,
    countbench, takes the Ctrl-C, and pyperf kills the worker it was waiting for. A worker
    that fails says why on its stderr; countbench reads it (:meth:`failure`) and reports it
    in its own one line, instead of the worker's line and pyperf's next to it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[Any], Path]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a worker so that no Ctrl-C can orphan it: the child is forked with SIGINT
        blocked (between fork and its setpgid it is still in our group), and a Ctrl-C that
        arrives here meanwhile is held until the worker exists, which is then killed before
        the interrupt goes on (pyperf only kills workers it has been handed)."""
        kwargs.setdefault("process_group", 0)
        stderr_path = self.folder / f"worker-{len(self.started)}.stderr"
        interrupted: list[int] = []
        handler = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
        try:
            with stderr_path.open("wb") as stderr:
                kwargs["stderr"] = stderr
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                try:
                    proc = subprocess.Popen(*args, **kwargs)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            held = bool(interrupted)  # a pending SIGINT has reached the recorder by now
        finally:
            signal.signal(signal.SIGINT, handler)
        self.started.append((proc, stderr_path))
        reaper.watch(proc.pid)
        if held:
            proc.kill()
            proc.wait()
            raise KeyboardInterrupt
        return proc

    def failure(self) -> str | None:
        """Why the last worker failed, in one line; None if it did not fail."""
        if not self.started:
            return None
        proc, path = self.started[-1]
        if proc.returncode in (None, 0):
            return None
        lines = [line.strip() for line in self.said(path).splitlines() if line.strip()]
        own = [line for line in lines if line.startswith(WORKER_PREFIX)]
        if own:
            return own[-1].removeprefix(WORKER_PREFIX)
        if lines:  # e.g. the last line of a traceback
            return lines[-1]
        return f"a pyperf worker exited with status {proc.returncode}"

    def relay(self) -> None:
        """Pass on what workers that did not fail wrote on stderr (normally nothing)."""
        for proc, path in self.started:
            text = self.said(path)
            if proc.returncode == 0 and text.strip():
                sys.stderr.write(text if text.endswith("\n") else text + "\n")

    @staticmethod
    def said(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def _workers_in_their_own_group(workers: _WorkersInTheirOwnGroup) -> Iterator[None]:
    import pyperf._manager as manager

    manager.subprocess = workers
    try:
        yield
    finally:
        manager.subprocess = subprocess


def time_plan(
    plan: Plan,
    controls: Controls,
    before: Callable[[list[Benchmark]], None] = lambda _: None,
    after: Callable[[Benchmark, Timing], None] = lambda *_: None,
) -> dict[str, Timing]:
    """Time every benchmark of ``plan`` with pyperf; results by benchmark name. ``before``
    is called with the benchmarks about to be timed together (see :func:`groups`)."""
    runner = make_runner(controls)
    timings: dict[str, Timing] = {}
    current: list[Benchmark] = []

    def start(group: list[Benchmark]) -> None:
        current[:] = group
        before(group)

    def failed(reason: str) -> WorkerFailed:
        # A grouped worker names the benchmark it failed on (GroupError).
        if reason.split(": ", 1)[0] in {b.name for b in current}:
            return WorkerFailed(reason)
        return WorkerFailed(f"{current[0].name}: {reason}")

    def collect(benchmark: Benchmark, result: pyperf.Benchmark | None) -> None:
        if result is None:
            raise RuntimeError(f"pyperf returned no result for {benchmark.name}")
        timings[benchmark.name] = Timing.from_pyperf(result)
        timings[benchmark.name].calibration = "countbench" if controls.self_calibrated else "pyperf"
        after(benchmark, timings[benchmark.name])

    with reaper.temporary("run") as folder:
        environment = {**plan.environment(), **plan.save_workload(Path(folder) / "workload")}
        runner.parse_args(pyperf_arguments(plan, controls, sorted(environment)))
        saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        workers = _WorkersInTheirOwnGroup(Path(folder))
        said = io.StringIO()
        try:
            # pyperf prints its progress and results on stdout, and its own errors on
            # stderr; countbench shows its own, and turns pyperf's exits into exceptions.
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(said),
                _workers_in_their_own_group(workers),
            ):
                if controls.grouped:
                    _time_groups(runner, plan, start, collect, controls)
                else:
                    register(runner, plan, lambda benchmark: start([benchmark]), collect)
        except SystemExit as exc:
            message = " ".join(said.getvalue().split())
            if "interrupted" in message:
                raise KeyboardInterrupt from None
            reason = workers.failure()
            if reason is not None and current:
                raise failed(reason) from None
            raise RuntimeError(f"pyperf stopped (status {exc.code}): {message}") from None
        except RuntimeError:
            reason = workers.failure()
            if reason is None or not current:
                raise
            raise failed(reason) from None
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        workers.relay()
    return timings
