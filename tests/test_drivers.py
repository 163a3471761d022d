"""Every driver with every strategy it supports: fault-free runs give the exact truth."""

from __future__ import annotations

from typing import ClassVar

import psutil
import pytest

from countbench.bench import shaped
from countbench.bench.drivers import DRIVERS, DriverError, make_driver
from countbench.bench.drivers.base import (
    MAX_CHUNKS_PER_INTERVAL,
    bind,
    chunk_ops,
    chunks_per_interval,
    horizon,
    replay,
    split_chunks,
)
from countbench.bench.measure import verify
from countbench.bench.plan import Plan
from countbench.bench.workload import Op, Shape, Workload, WorkloadSpec, build
from countbench.strategies.base import (
    Consistency,
    Mode,
    Node,
    ServiceStrategy,
    SharedStrategy,
    Strategy,
    StrategyConfig,
)
from countbench.strategies.registry import BUILTINS

SPEC = WorkloadSpec(users=60, operations=1_500, workers=3, nodes=3, sync_every=200, seed=5)

IN_PROCESS = [cls for cls in BUILTINS if not issubclass(cls, ServiceStrategy)]
CASES = [(mode, cls) for mode in Mode for cls in IN_PROCESS if mode in cls.modes]


def _strategy(cls: type[Strategy], spec: WorkloadSpec) -> Strategy:
    return cls(StrategyConfig(nodes=spec.nodes, session_timeout=spec.session_timeout))


def _logins(workload: Workload) -> int:
    return sum(1 for s in workload.mixed for k in s.kinds if k is Op.LOGIN)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "cls"), CASES, ids=[f"{m}-{c.name}" for m, c in CASES])
def test_fault_free_run_counts_the_truth(mode: Mode, cls: type[Strategy]) -> None:
    workload = build(SPEC)
    with make_driver(mode, _strategy(cls, SPEC), workload) as driver:
        assert driver.run("mixed", 1) > 0
        driver.settle()
        counts = driver.counts()
    truth = len(workload.online_after_mixed)
    assert truth > 0
    if cls.name == "gcounter":
        # Grow-only: it counts every login and can never take a logout away.
        expected = _logins(workload)
        assert expected > truth
    else:
        expected = truth
    assert counts and all(count == expected for count in counts), (counts, expected)
    nodes = 1 if issubclass(cls, SharedStrategy) else SPEC.nodes
    assert len(counts) == nodes


THREADED = [cls for cls in IN_PROCESS if Mode.THREAD in cls.modes]


def test_a_sync_interval_is_cut_into_equal_chunks_only_when_syncs_do_no_work() -> None:
    def per_interval(sync_every: int, syncs: bool) -> int:
        return chunks_per_interval(build(WorkloadSpec(sync_every=sync_every)), syncs)

    assert per_interval(1000, True) == 1
    assert per_interval(1000, False) == MAX_CHUNKS_PER_INTERVAL == 20
    assert per_interval(30, False) == 15
    assert per_interval(997, False) == 1  # a prime: no equal cut
    # With a pipeline, a client's sync sends its queued writes: whole intervals again.
    assert chunks_per_interval(build(WorkloadSpec(pipeline=16)), False) == 1
    # Two intervals of 6 client operations and a sync ("S"), cut in three.
    ops = [*"abcdefS", *"ghijklS", *"mn"]
    chunks = split_chunks(ops, 2, 6, 3)
    assert chunks == [
        ["a", "b"],
        ["c", "d"],
        ["e", "f", "S"],
        ["g", "h"],
        ["i", "j"],
        ["k", "l", "S"],
    ]
    assert split_chunks(ops, 2, 6) == [[*"abcdefS"], [*"ghijklS"]]
    workload = build(WorkloadSpec(workers=2, sync_every=1000))
    assert chunk_ops(workload, "mixed", 20) == 2 * 50
    assert chunk_ops(workload, "mixed") == 2 * 1000
    # Which built-in strategies say their syncs do no work: those whose sync at most
    # flushes queued writes, or that have none.
    assert sorted(c.name for c in BUILTINS if not c.syncs) == [
        "aggregate",
        "aggregate-remote",
        "central",
        "local",
        "redis-cluster",
        "redis-incr",
        "redis-set",
        "redis-zset",
        "session",
    ]


@pytest.mark.parametrize("cls", THREADED, ids=[c.name for c in THREADED])
def test_the_fill_leaves_the_counts_a_mixed_pass_leaves(cls: type[Strategy]) -> None:
    """The reads benchmark fills its nodes with ``Workload.fill`` (the mixed pass without
    its reads): the state it leaves must count what a whole pass leaves."""
    workload = build(SPEC)
    assert all(Op.READ not in s.kinds for s in workload.fill)
    assert [s.client_ops for s in workload.fill] == [
        sum(1 for k in s.kinds if k not in (Op.READ, Op.SYNC)) for s in workload.mixed
    ]
    counts = {}
    for stream in ("mixed", "fill"):
        with make_driver(Mode.THREAD, _strategy(cls, SPEC), workload) as driver:
            driver.run(stream, 1)  # type: ignore[arg-type]
            driver.settle()
            counts[stream] = driver.counts()
            assert driver.now() == workload.end_time
    assert counts["fill"] == counts["mixed"]


@pytest.mark.parametrize("mode", list(Mode))
def test_repeated_passes_and_every_stream_run(mode: Mode) -> None:
    workload = build(SPEC)
    with make_driver(mode, _strategy(BUILTINS[0], SPEC), workload) as driver:
        for stream in ("writes", "reads", "mixed"):
            assert driver.run(stream, 3) > 0  # type: ignore[arg-type]
        assert driver.passes_done == 9
        assert driver.client_ops("reads") == SPEC.operations * SPEC.workers


def test_process_driver_leaves_no_child_process() -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    spec = WorkloadSpec(users=30, operations=300, workers=2, nodes=2)
    cls = next(c for c in BUILTINS if c.name == "pncounter")
    driver = make_driver(Mode.PROCESS, _strategy(cls, spec), build(spec))
    with driver:
        started = {p.pid for p in me.children(recursive=True)} - before
        assert len(started) >= 2
        driver.run("mixed", 1)
    driver.close()  # a second close is harmless
    # close() joins its processes, so none is left running or as a zombie.
    assert not [pid for pid in started if psutil.pid_exists(pid)]


def test_process_mode_needs_one_node_per_worker() -> None:
    spec = WorkloadSpec(users=30, operations=100, workers=2, nodes=3)
    cls = next(c for c in BUILTINS if c.name == "pncounter")
    with (
        pytest.raises(DriverError, match="one node per worker"),
        make_driver(Mode.PROCESS, _strategy(cls, spec), build(spec)),
    ):
        pass


class Exploding(SharedStrategy):
    name = "exploding"
    summary = "fails on the first login"
    consistency = Consistency.STRONG
    modes: ClassVar[frozenset[Mode]] = frozenset(Mode)

    def open(self, mode: Mode) -> Node:
        return ExplodingNode()


class ExplodingNode:
    def login(self, user: str, now: float) -> None:
        raise ValueError("boom")

    def logout(self, user: str, now: float) -> None:
        return None

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return 0


@pytest.mark.parametrize("mode", [Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO])
def test_a_failing_worker_is_reported(mode: Mode) -> None:
    spec = WorkloadSpec(users=10, operations=50, workers=2, nodes=2)
    driver = DRIVERS[mode](Exploding(StrategyConfig()), build(spec), spec.workers)
    with driver, pytest.raises((DriverError, ValueError), match="boom"):
        driver.run("writes", 1)


def test_replay_moves_time_forward_by_one_horizon_per_pass() -> None:
    seen: list[float] = []

    class Recorder:
        def login(self, user: str, now: float) -> None:
            seen.append(now)

        logout = heartbeat = login

        def count(self, now: float) -> int:
            seen.append(now)
            return 0

    workload = build(WorkloadSpec(users=5, operations=20, workers=1))
    span = horizon(workload)
    ops = bind(workload.mixed[0], Recorder())
    replay(ops, 2, 2, span)
    client = [
        t
        for k, t in zip(workload.mixed[0].kinds, workload.mixed[0].times, strict=True)
        if k is not Op.SYNC
    ]
    assert seen == [t + 2 * span for t in client] + [t + 3 * span for t in client]


class _ChunkClock:
    """Stands in for a driver in :func:`loops_from_probe`: each chunk takes ``seconds``, the
    first one ``first`` (a cold start), one run ``stall`` more (a loaded machine)."""

    def __init__(self, seconds: float, first: float, stall_run: int = -1, stall: float = 0.0):
        self.seconds, self.first, self.stall_run, self.stall = seconds, first, stall_run, stall
        self.runs: list[int] = []

    def run_chunks(self, stream: str, count: int) -> float:
        self.runs.append(count)
        if len(self.runs) == 1:
            return self.first
        extra = self.stall if len(self.runs) - 1 == self.stall_run else 0.0
        return count * self.seconds + extra


@pytest.mark.parametrize(
    ("seconds", "first", "loops"),
    [
        (0.0005, 0.05, 100),  # fast: a cold first chunk does not count
        (0.02, 0.1, 3),
        (0.2, 0.3, 1),  # one chunk is longer than a value
        (0.03, 0.5, 1),  # a first chunk of ten values: one loop is enough
    ],
)
def test_loops_from_probe_reach_the_shortest_value(
    seconds: float, first: float, loops: int
) -> None:
    from countbench.bench.timing import loops_from_probe

    clock = _ChunkClock(seconds, first)
    assert loops_from_probe(clock, "writes", 0.05) == loops  # type: ignore[arg-type]
    # The probe itself lasts about a value or two, not more.
    assert sum(clock.runs[1:]) * seconds <= 4 * 0.05 + seconds


def test_loops_from_probe_ignores_one_stalled_run() -> None:
    from countbench.bench.timing import loops_from_probe

    clock = _ChunkClock(0.0005, 0.0005, stall_run=2, stall=0.2)
    assert loops_from_probe(clock, "reads", 0.05) == 100  # type: ignore[arg-type]


def test_a_disconnect_shows_as_error_in_its_window_and_the_truth_sees_it() -> None:
    """Half the online users vanish (no logout) for a fifth of the pass: ``session`` keeps
    their sessions until they time out (1800 s, longer than the window), so its reads in
    the window count them (the measured error is about the vanished users), and once they
    reconnect it is right again; a truth blind to the vanishing would see no error."""
    shape = Shape("disconnect", at=0.4, duration=0.2, share=0.5)
    # One worker: with two, a read sees the other's users only as far as that worker has
    # got, which may be before the vanishing (then that part of the error is not there yet).
    spec = WorkloadSpec(
        users=400, operations=8000, workers=1, seed=3, shapes=(shape,), scenario="test"
    )
    plan = Plan(("session",), Mode.THREAD, spec)
    ((_, low, high),) = plan.workload.windows
    vanished = plan.workload.online_at(low - 1e-6) - plan.workload.online_at(low)
    assert vanished > 20
    _, observed, _ = verify(plan, "session")
    figures = observed.scenario
    assert figures is not None and figures["name"] == "test"
    (window,) = figures["windows"]
    assert (window["from"], window["to"]) == (low, high)
    assert window["reads"] > 0 and figures["outside"]["reads"] > 0
    assert window["error_net_mean"] > 0.8 * vanished, (window, vanished)
    assert window["error_max"] == vanished
    assert figures["outside"]["error_max"] == 0, figures["outside"]


@pytest.mark.parametrize("scenario", ["storm", "churn", "skew", "daily"])
@pytest.mark.parametrize(("strategy", "workers"), [("local", 2), ("session", 1)])
def test_a_counter_that_is_right_shows_no_error_in_any_window(
    scenario: str, strategy: str, workers: int
) -> None:
    """No user vanishes in these scenarios and these counters count exactly: every read
    equals the users online as far as each worker had got, in the window and out of it (a
    truth that placed a user event too late or too early would show errors of 1). With
    two workers, ``local`` (no timeouts); ``session`` with one, because with two a read
    stamped by one worker's clock may expire a session whose heartbeat the other has yet to
    send (the skew scenario's quiet users heartbeat every 800 s), an error it really makes."""
    name, shapes = shaped.load(scenario)
    spec = WorkloadSpec(
        users=400, operations=4000, workers=workers, seed=3, scenario=name, shapes=shapes
    )
    _, observed, _ = verify(Plan((strategy,), Mode.THREAD, spec), strategy)
    figures = observed.scenario
    assert figures is not None
    (window,) = figures["windows"]
    assert window["reads"] > 100 and figures["outside"]["reads"] > 100
    assert window["error_max"] == figures["outside"]["error_max"] == 0, figures


def test_asyncio_workers_yield_every_hundred_operations_however_short_the_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An in-process strategy's tasks yield every YIELD_EVERY operations: a sync interval
    cut into 20 chunks (of 50) must not make them yield twice as often (a cost of the
    harness that would show as the strategy's)."""
    import asyncio

    from countbench.bench.drivers import asyncio_tasks

    spec = WorkloadSpec(users=60, operations=2000, workers=2, sync_every=1000)
    local = next(c for c in BUILTINS if c.name == "local")
    yields = []
    real_sleep = asyncio.sleep

    async def counted(delay: float) -> None:
        yields.append(delay)
        await real_sleep(delay)

    with make_driver(Mode.ASYNCIO, _strategy(local, spec), build(spec)) as driver:
        assert driver.per_interval == 20
        monkeypatch.setattr(asyncio_tasks.asyncio, "sleep", counted)
        driver.run_chunks("reads", 40)  # 40 chunks of 50 reads for each worker
    assert len(yields) == 2 * 40 * 50 // asyncio_tasks.YIELD_EVERY


@pytest.mark.parametrize("mode", [Mode.THREAD, Mode.PROCESS])
def test_closing_a_driver_stops_an_open_loop_pass_at_once(mode: Mode) -> None:
    """A pass paced at 1 operation a second would take 400 s; a Ctrl-C closes the driver
    in the middle of it, and the workers must stop at once (waiting workers used to hold
    the exit for 10-20 s)."""
    import threading
    import time

    spec = WorkloadSpec(users=60, operations=200, workers=2, nodes=2, rate=1.0)
    pncounter = next(c for c in BUILTINS if c.name == "pncounter")
    driver = make_driver(mode, _strategy(pncounter, spec), build(spec), record_latency=True)
    driver.start()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            driver.run("mixed", 1)
        except BaseException as exc:  # the driver closed under it
            failures.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(1.0)
    closing = time.monotonic()
    driver.close()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert time.monotonic() - closing < 3
    assert failures, "the pass ended as if it had run"
