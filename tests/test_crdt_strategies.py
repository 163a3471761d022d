"""The CRDT strategies ``pncounter-op``, ``orset``, ``vclock`` and ``compact``: merge laws,
convergence under any delivery order with duplication, every driver fault-free, and what the
fault simulator shows of each (duplication breaks the op-based counter; leases make the
OR-set forget vanished users; pruning keeps the compact counter's state bounded)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from countbench.bench.drivers import make_driver
from countbench.bench.sim import (
    DuplicateFault,
    PartitionFault,
    Scenario,
    run_scenario,
)
from countbench.bench.workload import WorkloadSpec, build
from countbench.strategies.base import Mode, ReplicatedStrategy, StrategyConfig
from countbench.strategies.compact import (
    CompactCounter,
    CompactReplica,
    CompactStrategy,
    Key,
    Marker,
)
from countbench.strategies.orset import ORSet, ORSetStrategy, Tag
from countbench.strategies.pncounter import PNCounterStrategy
from countbench.strategies.pncounter_op import OpPNCounterReplica, OpPNCounterStrategy
from countbench.strategies.vclock import Event, FrontierMap, VClockStrategy, leq
from helpers import partition_schedules, partitioned

NEW: list[type[ReplicatedStrategy]] = [
    OpPNCounterStrategy,
    ORSetStrategy,
    VClockStrategy,
    CompactStrategy,
]
SMALL = Scenario(nodes=4, users=150, operations=1500, session_timeout=120.0, seed=3)
LAWS = settings(max_examples=60, deadline=None)

# -- state generators -----------------------------------------------------------------------

TAG_STATES = st.lists(
    st.tuples(
        st.tuples(st.integers(0, 2), st.sampled_from([0.0, 5.0]), st.integers(1, 4)),
        st.integers(0, 50).map(float),
        st.booleans(),
    ),
    max_size=8,
)


def orset_of(rows: list[tuple[Tag, float, bool]]) -> ORSet:
    # A tag's user is a function of the tag, as it is for real tags.
    return ORSet(((tag, (f"u{tag[2] % 3}", expiry, removed)) for tag, expiry, removed in rows))


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["u0", "u1"]),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 3), min_size=1),
    ),
    max_size=6,
)


def frontier_of(rows: list[tuple[str, dict[str, int]]]) -> FrontierMap:
    state = FrontierMap()
    for user, clock in rows:
        # A clock identifies one event: kind, time and actor are functions of it.
        total = sum(clock.values())
        state.add(user, Event(clock, total % 2 == 1, float(total), max(clock)))
    return state


#: Incarnation keys: three replica ids, two epochs each (a restart).
KEYS = st.tuples(st.integers(0, 2), st.sampled_from([0.0, 5.0]))
MARKERS = st.dictionaries(
    st.tuples(st.integers(5, 7), st.sampled_from([0.0, 5.0])),
    st.tuples(
        KEYS, st.sets(KEYS, max_size=4), st.booleans(), st.sets(KEYS, max_size=4), st.integers(0, 1)
    ),
    max_size=3,
)
COMPACTS = st.tuples(
    st.dictionaries(
        st.tuples(st.integers(0, 7), st.sampled_from([0.0, 5.0])),
        st.tuples(st.integers(0, 9), st.integers(0, 9)),
    ),
    MARKERS,
)


def at_of(key: Key, owner: Key, generation: int) -> float:
    return key[0] * 100 + owner[0] * 10 + owner[1] + generation


def compact_of(
    data: tuple[dict[Key, tuple[int, int]], dict[Key, tuple[Any, ...]]],
) -> CompactCounter:
    entries, markers = data
    return CompactCounter(
        entries,
        {
            # When a marker was performed is a function of the marker, as for real ones.
            key: Marker(owner, set(seen), performed, at_of(key, owner, gen), set(done), gen)
            for key, (owner, seen, performed, done, gen) in markers.items()
        },
    )


def merged(a: object, b: object) -> object:
    copy = a.copy()  # type: ignore[attr-defined]
    copy.merge(b)
    return copy


def check_laws(a: object, b: object, c: object) -> None:
    assert merged(a, b) == merged(b, a)
    assert merged(merged(a, b), c) == merged(a, merged(b, c))
    assert merged(a, a) == a
    assert merged(merged(a, b), b) == merged(a, b)


@LAWS
@given(TAG_STATES, TAG_STATES, TAG_STATES)
def test_orset_merge_is_a_join(a: list[Any], b: list[Any], c: list[Any]) -> None:
    x, y, z = orset_of(a), orset_of(b), orset_of(c)
    check_laws(x, y, z)
    for now in (0.0, 20.0, 60.0):
        assert merged(x, y).value(now) == merged(y, x).value(now)  # type: ignore[attr-defined]


@LAWS
@given(EVENTS, EVENTS, EVENTS)
def test_vclock_frontier_merge_is_a_join(a: list[Any], b: list[Any], c: list[Any]) -> None:
    x, y, z = frontier_of(a), frontier_of(b), frontier_of(c)
    for state in (x, y, z):  # every frontier is an antichain
        for events in state.frontiers.values():
            for e in events:
                assert not any(e is not f and leq(e.clock, f.clock) for f in events)
    check_laws(x, y, z)
    assert merged(x, y).online == merged(y, x).online  # type: ignore[attr-defined]


@LAWS
@given(COMPACTS, COMPACTS, COMPACTS)
def test_compact_merge_is_a_join(a: Any, b: Any, c: Any) -> None:
    x, y, z = compact_of(a), compact_of(b), compact_of(c)
    check_laws(x, y, z)
    for state in (x, y, z, merged(x, y)):
        assert CompactCounter.decode(state.encode()) == state  # type: ignore[attr-defined]


# -- convergence under any delivery order with duplication: countbench.bench.testing's
# check_delivery, run on every replicated built-in in test_conformance.py.


# -- every driver, fault-free ---------------------------------------------------------------

SPEC = WorkloadSpec(users=60, operations=1_500, workers=3, nodes=3, sync_every=200, seed=5)
CASES = [(mode, cls) for mode in Mode for cls in NEW if mode in cls.modes]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "cls"), CASES, ids=[f"{m}-{c.name}" for m, c in CASES])
def test_every_driver_counts_the_truth(mode: Mode, cls: type[ReplicatedStrategy]) -> None:
    # Drivers deliver exactly once (in-process routers, multiprocessing queues): even the
    # op-based counter is exact here.
    workload = build(SPEC)
    strategy = cls(StrategyConfig(nodes=SPEC.nodes, session_timeout=SPEC.session_timeout))
    with make_driver(mode, strategy, workload) as driver:
        assert driver.run("mixed", 1) > 0
        driver.settle()
        counts = driver.counts()
    truth = len(workload.online_after_mixed)
    assert truth > 0
    assert counts == [truth] * SPEC.nodes, (counts, truth)


# -- the simulator --------------------------------------------------------------------------


def test_duplication_breaks_the_op_based_counter_not_the_state_based_one() -> None:
    scenario = SMALL.with_overrides(
        vanish_rate=0.0, faults=(DuplicateFault(start=0, end=None, probability=0.5),)
    )
    op = run_scenario(OpPNCounterStrategy, scenario)
    state = run_scenario(PNCounterStrategy, scenario)
    assert op.cost.duplicated > 20
    assert op.final.max_abs_error > 0
    assert state.final.errors == [0] * 4
    clean = run_scenario(OpPNCounterStrategy, SMALL.with_overrides(vanish_rate=0.0))
    assert clean.final.errors == [0] * 4  # exactly-once delivery: exact


def test_leases_make_the_orset_forget_vanished_users() -> None:
    scenario = SMALL.with_overrides(vanish_rate=0.5)
    orset = run_scenario(ORSetStrategy, scenario)
    pn = run_scenario(PNCounterStrategy, scenario)
    assert orset.final.vanished > 0
    assert orset.final.errors == [0] * 4
    assert orset.final.agree
    assert pn.final.errors == [pn.final.vanished] * 4
    assert pn.final.vanished > 0


def test_orset_and_vclock_are_exact_without_vanishing_and_pass_the_verdict() -> None:
    scenario = SMALL.with_overrides(
        vanish_rate=0.0,
        faults=(
            DuplicateFault(start=20, end=200, probability=0.5),
            PartitionFault(start=60, end=160, layout="halves"),
        ),
    )
    for cls in (ORSetStrategy, VClockStrategy, CompactStrategy):
        result = run_scenario(cls, scenario)
        assert result.final.errors == [0] * 4, cls.name
        assert result.verdict.passed, (cls.name, result.verdict)
    vclock = run_scenario(VClockStrategy, scenario)
    pn = run_scenario(PNCounterStrategy, scenario)
    assert vclock.cost.metadata_bytes_max > 10 * pn.cost.metadata_bytes_max


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    nodes=st.integers(2, 5),
    schedule=partition_schedules(),
)
def test_orset_converges_to_the_truth_after_random_partitions(
    seed: int, nodes: int, schedule: list[tuple[float, float, str, bool, int]]
) -> None:
    result = run_scenario(ORSetStrategy, partitioned(nodes, seed, schedule))
    assert result.final.agree, result.final
    assert result.final.errors == [0] * nodes, result.final


# -- compact under churn --------------------------------------------------------------------


def test_compact_stays_bounded_and_exact_while_replicas_churn() -> None:
    rng = random.Random(11)
    ttl = 5.0
    live: dict[int, CompactReplica] = {i: CompactReplica(i, marker_ttl=ttl) for i in range(3)}
    next_id, balance, sizes = 3, 0, []
    for step in range(400):
        now = float(step)
        for _ in range(4):  # client operations on random live replicas
            replica = live[rng.choice(sorted(live))]
            if rng.random() < 0.6:
                replica.login("u", now)
                balance += 1
            else:
                replica.logout("u", now)
                balance -= 1
        outbox = [m for node in sorted(live) for m in live[node].sync(now)]
        outbox += rng.sample(outbox, len(outbox) // 3)  # duplicates
        rng.shuffle(outbox)
        for message in outbox:
            for node in sorted(live):
                if node != message.src:
                    live[node].receive(message, now)
        if step % 10 == 9 and step < 350:
            # The oldest replica leaves (after its final state went out above); a new one
            # joins; the lowest remaining id coordinates the fold.
            oldest = min(live)
            del live[oldest]
            live[min(live)].retire(oldest, now)
            live[next_id] = CompactReplica(next_id, marker_ttl=ttl)
            next_id += 1
        sizes.append(max(len(r.state.encode()) for r in live.values()))
    assert next_id > 30  # dozens of ids came and went
    values = {r.count(400.0) for r in live.values()}
    assert values == {balance}
    assert all(len(r.state.entries) == 3 and not r.state.markers for r in live.values())
    assert max(sizes) < 250, max(sizes)  # bounded, far from one entry per id ever seen


def test_op_counter_counts_each_received_copy() -> None:
    a, b = OpPNCounterReplica(0), OpPNCounterReplica(1)
    a.login("u", 1.0)
    (message,) = a.sync(1.0)
    b.receive(message, 2.0)
    b.receive(message, 2.0)  # a duplicate is applied again: no dedup by design
    assert a.count(2.0) == 1 and b.count(2.0) == 2
    assert a.sync(3.0) == []
