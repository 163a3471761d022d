"""One run, end to end: verify each strategy against the truth, time it, measure its code.

The result is the JSON report's content (a plain dict, see ``reports/json_report.py``);
every figure in it comes from this run.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..strategies.base import HostedStrategy, ServiceStrategy, Strategy, simulable
from ..strategies.registry import describe
from ..strategies.spec import SESSIONS, Counts, Specification
from .complexity import measure as measure_complexity
from .drivers import STREAMS
from .environment import git_facts, machine_facts, python_facts, strategy_package, tool_version
from .latency import INTENDED, history_rows, mean_ns, merge, open_loop, summarize
from .plan import Benchmark, Plan
from .services import needed, provide
from .sim.allowed import Allowed, checked_count, shown
from .sim.history import History
from .timing import Controls, Timing, time_plan
from .workload import Op, Workload, WorkloadSpec

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Verification:
    """Counts after one fault-free pass of the mixed stream and a final sync: against the
    value the strategy's specification gives for that pass (``allowed``: a count that
    differs is a bug), and against the exact number of users online at that instant
    (``truth``: the design's error, expected for some)."""

    truth: int
    counts: list[int]
    seconds: float
    specification: str = SESSIONS.name
    allowed: tuple[int, int] = (0, 0)  # low, high: what the specification allows
    absurd: tuple[str, ...] = ()  # counts that were no whole number within ±2**53
    #: False when the specification's value depends on how the workers interleaved: a
    #: session timeout shorter than the pass's span lets one worker's later ``now``
    #: expire a session whose heartbeats another worker has yet to send
    judged: bool = True

    @property
    def in_spec(self) -> list[bool]:
        low, high = self.allowed
        return [low <= count <= high for count in self.counts]

    @property
    def correct(self) -> bool | None:
        if self.absurd:
            return False
        return all(self.in_spec) if self.judged else None

    @property
    def errors(self) -> list[int]:
        return [count - self.truth for count in self.counts]

    @property
    def max_abs_error(self) -> int:
        return max((abs(e) for e in self.errors), default=0)

    @property
    def agree(self) -> bool:
        return len(set(self.counts)) <= 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "truth": self.truth,
            "counts": self.counts,
            "errors": self.errors,
            "max_abs_error": self.max_abs_error,
            "nodes_agree": self.agree,
            "seconds": self.seconds,
            "specification": self.specification,
            "allowed": list(self.allowed),
            "in_spec": self.in_spec,
            "correct": self.correct,
            "judged": self.judged,
            **({"absurd": list(self.absurd)} if self.absurd else {}),
        }


@dataclass(frozen=True)
class Observed:
    """What the verification pass measured besides the final counts."""

    latency: dict[str, dict[str, float]]  # per operation kind, see latency.summarize
    reads: dict[str, float] | None  # partial reads and staleness, for nodes that keep them
    open_loop: dict[str, Any] | None = None  # an open-loop pass's figures (latency.open_loop)
    scenario: dict[str, Any] | None = None  # a shaped pass's error in and out of its windows


def read_summary(stats: list[dict[str, float]]) -> dict[str, float] | None:
    """Every client node's read statistics, added up: reads, partial reads, and the mean
    and largest age of a value read (in the workload's seconds)."""
    if not stats:
        return None
    reads = sum(s["reads"] for s in stats)
    return {
        "reads": reads,
        "partial_reads": sum(s["partial_reads"] for s in stats),
        "staleness_mean_s": sum(s["staleness_sum_s"] for s in stats) / reads if reads else 0.0,
        "staleness_max_s": max(s["staleness_max_s"] for s in stats),
    }


def window_errors(workload: Workload, rows: list[list[list[Any]]]) -> dict[str, Any] | None:
    """A shaped scenario's error, measured during the pass: each read's value against the
    users online as far as every worker had got while the read ran (the reader's own users
    just before the read; worker v's as after any of its calls that may have taken effect
    by then: from the last one answered before the read started to the last one started
    before it ended: workers replay their own users' timelines side by side, so the truth a
    read can see is theirs, not one instant's, and calls that overlap the read may or may
    not be seen), 0 when the value is among those, else its distance to the nearest;
    gathered per shape window (by the read's virtual time) and for the reads outside every
    window; None without shapes. ``rows`` are each worker's calls of one pass of the mixed
    stream, in order (``LatencyRecorder``)."""
    if not workload.windows:
        return None

    def summary(errors: list[int]) -> dict[str, Any]:
        magnitudes = [abs(e) for e in errors]
        return {
            "reads": len(errors),
            "error_max": max(magnitudes, default=0),
            "error_mean": sum(magnitudes) / len(magnitudes) if magnitudes else 0.0,
            "error_net_mean": sum(errors) / len(errors) if errors else 0.0,
        }

    starts = [[row[3] for row in worker] for worker in rows]  # in call order, as the ends
    ends = [[row[4] for row in worker] for worker in rows]
    inside: list[list[int]] = [[] for _ in workload.windows]
    outside: list[int] = []
    for reader, worker in enumerate(rows):
        for index, (kind, _user, now, start, end, value) in enumerate(worker):
            if kind != "count" or not isinstance(value, int):
                continue
            low = high = workload.online_before[reader][index]
            for other in range(len(rows)):
                if other == reader:
                    continue
                done = bisect.bisect_right(ends[other], start)  # calls answered by the start
                begun = bisect.bisect_right(starts[other], end)  # calls started by the end
                seen = workload.online_before[other][done : max(begun, done) + 1]
                low, high = low + min(seen), high + max(seen)
            error = value - high if value > high else value - low if value < low else 0
            hits = [i for i, (_, lo, hi) in enumerate(workload.windows) if lo <= now <= hi]
            for i in hits:
                inside[i].append(error)
            if not hits:
                outside.append(error)
    return {
        "name": workload.spec.scenario,
        "windows": [
            {"shape": shape, "from": lo, "to": hi, **summary(errors)}
            for (shape, lo, hi), errors in zip(workload.windows, inside, strict=True)
        ],
        "outside": summary(outside),
    }


def specified_value(spec: Specification, workload: Workload) -> tuple[int, int]:
    """The counts ``spec`` allows after one pass of the mixed stream, read at its end (no
    operation is refused or lost in that pass: the history is every operation)."""
    events = sorted(
        (at, kind, user)
        for stream in workload.mixed
        for at, kind, user in zip(stream.times, stream.kinds, stream.users, strict=True)
        if kind in (Op.LOGIN, Op.LOGOUT, Op.HEARTBEAT)
    )
    index = {name: i for i, name in enumerate(sorted({user for _, _, user in events}))}
    model = Allowed(spec, len(index), workload.spec.session_timeout)
    for at, kind, user in events:
        model.advance(at)
        if kind is Op.LOGIN:
            model.login(index[user], at)
        elif kind is Op.LOGOUT:
            model.logout(index[user], at)
        else:
            model.heartbeat(index[user], at)
    model.advance(workload.end_time)
    return model.bounds()


def verify(
    plan: Plan, name: str, spec: Specification = SESSIONS
) -> tuple[Verification, Observed, list[list[list[Any]]]]:
    """Run one pass of the mixed stream with the plan's driver, timing every operation
    into latency histograms; settle; read every node."""
    start = time.perf_counter()
    with plan.driver(name, "verify", record_latency=True) as driver:
        driver.run("mixed", 1)
        # Read statistics of the pass itself, before settle and the final reads.
        reads = read_summary(driver.node_stats())
        driver.settle()
        raw = driver.counts()
        latencies = driver.latencies()
    truth = len(plan.workload.online_after_mixed)
    allowed = specified_value(spec, plan.workload)
    rows = [history_rows(worker) for worker in latencies]
    means = mean_ns(row for worker in rows for row in worker)
    merged = merge(latencies)
    latency = {
        kind: summarize(h, means.get(kind))
        for kind, h in sorted(merged.items())
        if not kind.endswith(INTENDED)
    }
    paced = open_loop(plan.spec.rate, plan.spec.arrivals, latencies, merged, means)
    seconds = time.perf_counter() - start
    checked = [checked_count(value) for value in raw]
    counts = [count for count, _ in checked]
    absurd = tuple(
        f"node {node} counted {shown(value)} ({why})"
        for node, (value, (_, why)) in enumerate(zip(raw, checked, strict=True))
        if why
    )
    times = [t for stream in plan.workload.mixed for t in stream.times[:1]]
    span = plan.workload.end_time - min(times, default=plan.workload.end_time)
    expiring = spec.counts in (Counts.SESSIONS, Counts.SEEN)
    judged = not (expiring and plan.spec.session_timeout < span)
    verification = Verification(truth, counts, seconds, spec.name, allowed, absurd, judged)
    shaped = window_errors(plan.workload, rows)
    return verification, Observed(latency, reads, paced, shaped), rows


def verification_history(
    plan: Plan, cls: type[Strategy], check: Verification, rows: list[list[list[Any]]]
) -> History:
    """The verification pass as a history (docs/history.md, ``source: run``): each
    worker's calls with their wall-clock invoke and completion (seconds from the first
    call) and the workload's time (``now``), every count read after the pass, and the
    check against the specification."""
    kept = History(
        {
            "source": "run",
            "strategy": cls.name,
            "claim": str(cls.consistency),
            "specification": cls.specification.to_dict(),
            "session_timeout": plan.spec.session_timeout,
            "request_timeout": None,
            "requests": False,
            "nodes": plan.spec.nodes,
            "seed": plan.spec.seed,
            "scenario": {"mode": str(plan.mode), **plan.spec.to_dict()},
        }
    )
    calls = sorted(
        (start, end, worker, kind, user, now, value)
        for worker, worker_rows in enumerate(rows)
        for kind, user, now, start, end, value in worker_rows
    )
    zero = calls[0][0] if calls else 0
    events: list[tuple[int, int, int, Any]] = []
    for seq, call in enumerate(calls):
        events.append((call[0], 0, seq, call))
        events.append((call[1], 1, seq, call))
    indices: dict[int, int] = {}
    for at, completes, seq, (_, _, worker, kind, user, now, value) in sorted(events):
        seconds = (at - zero) / 1e9
        read = kind == "count"
        if not completes:
            process, node = f"worker{worker}", worker % plan.spec.nodes
            index = kept.invoke(seconds, process, node, "read" if read else kind, user or None)
            kept.lines[-1]["now"] = now
            indices[seq] = index
        else:
            kept.complete(indices[seq], seconds, "ok", value if read else None)
    end = (max((c[1] for c in calls), default=zero) - zero) / 1e9
    for node, count in enumerate(check.counts):
        kept.event("final", end, node=node, value=count)
    kept.event(
        "end",
        end,
        verdict={
            "passed": check.correct is not False,
            "bug": check.correct is False,
            "judged": check.judged,
            "allowed": list(check.allowed),
            "reasons": [] if check.correct else [f"counts {check.counts}", *check.absurd],
        },
    )
    return kept


#: The standard scenario behind the Consistency column (see ``countbench chaos``).
STANDARD_FAULTS = "partition,duplicate,reorder"
#: Client operations of that scenario: enough for every fault window, and quick (vclock, the
#: slowest strategy there, takes about a second and a half).
SIMULATED_OPERATIONS = 2000


def simulate(cls: type[Strategy], spec: WorkloadSpec) -> dict[str, Any] | None:
    """For a strategy the simulator can run (replicated, or with a replica twin): its
    replicas under the standard faulty scenario on the deterministic simulator (seeded
    with the workload's seed); None for other kinds."""
    if not simulable(cls):
        return None
    from .sim import run_scenario, standard_scenario

    scenario = standard_scenario(
        STANDARD_FAULTS, seed=spec.seed, nodes=max(spec.nodes, 3), operations=SIMULATED_OPERATIONS
    )
    result = run_scenario(cls, scenario).to_dict()
    return {
        "faults": STANDARD_FAULTS,
        "seed": spec.seed,
        "nodes": scenario.nodes,
        "error": result["error"],
        "staleness": result["staleness"],
        "value_staleness": result["value_staleness"],
        "spec_error": result["spec_error"],
        "final": result["final"],
        "verdict": result["verdict"],
        "trace_sha256": result["trace"]["sha256"],
    }


#: The standard real-fault scenario of ``--real-faults`` (see docs/real-faults.md).
REAL_FAULTS = ("pause", "kill")
REAL_FAULT_CLIENTS = 2
REAL_FAULT_SECONDS = 3.0


def real_fault_target(cls: type[Strategy]) -> bool:
    """Whether ``cls`` keeps its state on a server that real faults can be done to."""
    from .faults.targets import SUPPORTED

    if issubclass(cls, HostedStrategy):
        return True
    return issubclass(cls, ServiceStrategy) and cls.service in SUPPORTED


def real_fault_check(cls: type[Strategy], spec: WorkloadSpec) -> dict[str, Any]:
    """The standard real-fault scenario for ``cls`` (seeded with the workload's seed), as
    the report stores it: the counter check's figures and the verdict."""
    from .faults.report import to_dict
    from .faults.runner import RealFaultConfig, run_real_faults
    from .faults.targets import real_faults_for

    config = RealFaultConfig(
        strategy=cls.name,
        faults=real_faults_for(cls, REAL_FAULTS),
        seed=spec.seed,
        clients=REAL_FAULT_CLIENTS,
        duration=REAL_FAULT_SECONDS,
        nodes=spec.nodes,
    )
    full = to_dict(run_real_faults(config), str(cls.consistency))["real_faults"]
    return {key: full[key] for key in ("config", "seed", "clients", "check", "verdict")}


Progress = Callable[[str], None]
T = TypeVar("T")


class Background(Generic[T]):
    """``work()`` on a daemon thread, started at once: a Ctrl-C in the main thread is not
    held up by it. :meth:`result` waits for it and returns its value or raises its error.
    For pure computations only (nothing to stop or clean up)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: list[T] = []
        self._error: list[BaseException] = []

        def run() -> None:
            try:
                self._value.append(work())
            except BaseException as exc:  # handed to the caller of result()
                self._error.append(exc)

        self._thread = threading.Thread(target=run, name="countbench-background", daemon=True)
        self._thread.start()

    def result(self) -> T:
        self._thread.join()
        if self._error:
            raise self._error[0]
        return self._value[0]


def operation_mix(workload: Workload) -> dict[str, int]:
    """How many client operations of each kind one pass of the mixed stream holds (what
    Mixed/sec counts: every call a client makes, the heartbeats that some strategies
    ignore included)."""
    names = {Op.LOGIN: "login", Op.LOGOUT: "logout", Op.HEARTBEAT: "heartbeat", Op.READ: "read"}
    mix = dict.fromkeys(names.values(), 0)
    for stream in workload.mixed:
        for kind in stream.kinds:
            if kind in names:
                mix[names[Op(kind)]] += 1
    return mix


def run_plan(
    plan: Plan,
    controls: Controls,
    classes: dict[str, type[Strategy]],
    progress: Progress = lambda _: None,
    redis_url: str | None = None,
    real_faults: bool = False,
    histories: dict[str, History] | None = None,
) -> dict[str, Any]:
    """Start the servers the plan needs, verify and time every strategy, stop the servers;
    return the report content. With ``real_faults``, each strategy on a server also runs
    the standard real-fault scenario (:func:`real_fault_check`) on servers of its own.
    With ``histories``, each strategy's verification pass is put there as a history."""
    from .servers.redis_server import new_run_id

    started = datetime.now(UTC)
    run_id = new_run_id()
    services = needed(classes.values())
    if services:
        progress(f"starting {', '.join(sorted(services))}")
    # The simulations run in virtual time, so the servers' start (mostly waiting for a
    # Redis cluster to agree) can hide them; nothing is timed until both are done.
    simulating = Background(
        lambda: {name: simulate(classes[name], plan.spec) for name in plan.strategies}
    )
    with provide(services, run_id, plan.spec.session_timeout, plan.spec.nodes, redis_url) as run:
        simulations = simulating.result()
        plan = replace(plan, run_id=run_id, endpoints=run.endpoints)
        verifications: dict[str, Verification] = {}
        observed: dict[str, Observed] = {}
        checks: dict[str, dict[str, Any] | None] = {}
        for name in plan.strategies:
            progress(f"{name}: checking the count against the truth")
            verifications[name], observed[name], rows = verify(
                plan, name, classes[name].specification
            )
            if histories is not None:
                histories[name] = verification_history(
                    plan, classes[name], verifications[name], rows
                )
            if real_faults and real_fault_target(classes[name]):
                progress(f"{name}: pausing and killing its server")
                checks[name] = real_fault_check(classes[name], plan.spec)

        def before(group: list[Benchmark]) -> None:
            progress(f"{group[0].strategy}: timing {', '.join(b.stream for b in group)}")

        timings = time_plan(plan, controls, before=before)
    results = []
    for name in plan.strategies:
        cls = classes[name]
        streams: dict[str, Timing] = {
            b.stream: timings[b.name] for b in plan.benchmarks() if b.strategy == name
        }
        results.append(
            {
                "strategy": {**describe(cls), "package": strategy_package(cls)},
                "mode": str(plan.mode),
                "workers": plan.spec.workers,
                "nodes": plan.spec.nodes,
                "complexity": measure_complexity(cls).to_dict(),
                "verification": verifications[name].to_dict(),
                "latency": observed[name].latency,
                "reads": observed[name].reads,
                **({"open_loop": observed[name].open_loop} if plan.spec.rate else {}),
                **({"scenario": observed[name].scenario} if plan.spec.shapes else {}),
                "simulation": simulations[name],
                **({"real_faults": checks.get(name)} if real_faults else {}),
                "operations": {stream: streams[stream].to_dict() for stream in STREAMS},
            }
        )
    return {
        "kind": "countbench-report",
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "countbench", "version": tool_version()},
        "created": started.isoformat(timespec="seconds"),
        "duration_seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        "python": python_facts(),
        "machine": machine_facts(),
        "git": git_facts(),
        "preset": str(controls.preset),
        "timing": controls.to_dict(),
        "mode": str(plan.mode),
        "workload": plan.spec.to_dict(),
        "mix": operation_mix(plan.workload),
        "run_id": run_id,
        "services": run.facts,
        "results": results,
    }
