"""The conformance kit: checks a strategy plug-in runs from its own pytest suite.

    from countbench.bench.testing import check_delivery, check_node, check_simulation

    def test_node() -> None:
        check_node(MyStrategy)

    def test_any_delivery_converges() -> None:  # replicated strategies
        check_delivery(MyStrategy)

    def test_simulation() -> None:  # strategies the simulator runs
        check_simulation(MyStrategy)

Each check raises ``AssertionError`` saying what broke. ``check_delivery`` draws its cases
with hypothesis, a test dependency of the plug-in (``pip install hypothesis``), not of
countbench.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..strategies.base import (
    Consistency,
    Message,
    Mode,
    Node,
    Replica,
    ReplicatedStrategy,
    SharedStrategy,
    Strategy,
    StrategyConfig,
    simulable,
)
from ..strategies.spec import Counts, Specification

#: A session timeout no check reaches: nothing expires unless a check says so.
FOREVER = 1e9
USERS = ("u1", "u2", "u3")


def _expected(spec: Specification, logins: int, logouts: int) -> tuple[int, int]:
    """The counts ``spec`` allows after ``logins`` distinct users logged in, then
    ``logouts`` of them logged out (nothing expired, no heartbeat)."""
    exact = logins if spec.counts in (Counts.LOGINS, Counts.SEEN) else logins - logouts
    return spec.widen(exact, exact)


def _check_count(what: str, node: Node, now: float, allowed: tuple[int, int]) -> None:
    value = node.count(now)
    assert isinstance(value, int), f"{what}: count() returned {value!r}, not an int"
    low, high = allowed
    assert low <= value <= high, f"{what}: count {value}, its specification allows [{low}, {high}]"


def check_metadata(cls: type[Strategy]) -> None:
    """The class states what countbench needs: a name, a summary, a claim, its modes and a
    specification."""
    assert isinstance(cls.name, str) and cls.name.strip(), "name: a non-empty string"
    assert " " not in cls.name, f"name {cls.name!r}: no spaces (it is typed on command lines)"
    assert isinstance(cls.summary, str) and cls.summary.strip(), "summary: a non-empty string"
    assert isinstance(cls.consistency, Consistency), "consistency: a Consistency"
    assert cls.modes and all(isinstance(m, Mode) for m in cls.modes), "modes: a set of Mode"
    assert isinstance(cls.specification, Specification), "specification: a Specification"


def deliver(replicas: Sequence[Replica], messages: list[Message], now: float) -> None:
    """Deliver ``messages`` and every reply they cause, each to its ``dst`` (None: every
    replica but the sender), at once, in the order they were sent."""
    pending = list(messages)
    while pending:
        message = pending.pop(0)
        for replica in replicas:
            if replica.node_id == message.src:
                continue
            if message.dst is None or message.dst == replica.node_id:
                pending.extend(replica.receive(message, now))


def _settle(replicas: list[Replica], now: float, rounds: int = 20) -> list[int]:
    """Sync rounds until a round changes no count and all agree (or ``rounds`` ran)."""
    counts = [r.count(now) for r in replicas]
    for _ in range(rounds):
        for replica in replicas:
            deliver(replicas, replica.sync(now), now)
        before, counts = counts, [r.count(now) for r in replicas]
        if counts == before and min(counts) == max(counts):
            break
    return counts


def check_node(cls: type[Strategy], nodes: int = 3) -> None:
    """The node contract. Three users log in (on node 0), one logs out: every count is one
    the strategy's specification allows. A shared strategy is checked in every mode it
    claims; a replicated one's replicas must then agree after sync rounds (a message is
    never delivered to its sender, as in every driver). Service and hosted strategies are
    checked against real servers by countbench's own tests; here, their metadata only."""
    check_metadata(cls)
    spec = cls.specification
    strategy = cls(StrategyConfig(nodes=nodes, session_timeout=FOREVER))
    if isinstance(strategy, SharedStrategy):
        for mode in sorted(cls.modes):
            node = strategy.open(mode)
            assert isinstance(node, Node), f"open({mode}) did not return a Node"
            for user in USERS:
                node.login(user, 1.0)
            _check_count(f"{mode}: after 3 logins", node, 1.0, _expected(spec, 3, 0))
            node.logout("u2", 2.0)
            _check_count(f"{mode}: after a logout", node, 2.0, _expected(spec, 3, 1))
        return
    if not isinstance(strategy, ReplicatedStrategy):
        return
    replicas = [strategy.replica(i) for i in range(nodes)]
    for i, replica in enumerate(replicas):
        assert isinstance(replica, Node), f"replica({i}) is not a Node"
        assert replica.node_id == i, f"replica({i}).node_id is {replica.node_id}"
    for user in USERS:
        replicas[0].login(user, 1.0)
    _check_count("replica 0 after 3 logins", replicas[0], 1.0, _expected(spec, 3, 0))
    replicas[0].logout("u2", 2.0)
    _check_count("replica 0 after a logout", replicas[0], 2.0, _expected(spec, 3, 1))
    counts = _settle(replicas, 3.0)
    assert min(counts) == max(counts), f"replicas disagree after sync rounds: {counts}"
    for i, replica in enumerate(replicas):
        _check_count(f"replica {i} after sync", replica, 3.0, _expected(spec, 3, 1))


def check_delivery(cls: type[ReplicatedStrategy], examples: int = 40) -> None:
    """Any delivery converges (hypothesis): random operations and syncs on three replicas,
    then every replica receives every message the others sent, in a random order and
    (unless the specification assumes exactly-once delivery) with duplicates, then sync
    rounds: all replicas must agree, and delivering every message again must change no
    count. What this asks of a state-based design is that merge be commutative,
    associative and idempotent; of any design, that order and repetition not matter."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    assert issubclass(cls, ReplicatedStrategy), f"{cls.__name__} is not a ReplicatedStrategy"
    duplicates = not cls.specification.exactly_once
    ops = st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(["login", "logout", "heartbeat", "sync"]),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=40,
    )

    @settings(max_examples=examples, deadline=None, database=None)
    @given(ops=ops, seed=st.integers(0, 2**16))
    def converges(ops: list[tuple[int, str, int]], seed: int) -> None:
        strategy = cls(StrategyConfig(nodes=3, session_timeout=FOREVER))
        replicas = [strategy.replica(i) for i in range(3)]
        sent: list[Message] = []
        for step, (node, kind, user) in enumerate(ops):
            now = float(step)
            if kind == "sync":
                sent.extend(replicas[node].sync(now))
            else:
                getattr(replicas[node], kind)(f"user{user}", now)
        end = float(len(ops))
        for replica in replicas:
            sent.extend(replica.sync(end))
        rng = random.Random(seed)
        for replica in replicas:
            inbox = [m for m in sent if m.src != replica.node_id]
            if duplicates:
                inbox += rng.sample(inbox, len(inbox) // 2)
            rng.shuffle(inbox)
            for message in inbox:
                deliver(replicas, replica.receive(message, end), end)
        counts = _settle(replicas, end)
        assert min(counts) == max(counts), f"replicas disagree: {counts}"
        if duplicates:
            for replica in replicas:
                for message in sent:
                    if message.src != replica.node_id:
                        replica.receive(message, end)
            again = [r.count(end) for r in replicas]
            assert again == counts, f"old messages delivered again changed {counts} to {again}"

    converges()


def check_simulation(cls: type[Strategy], faults: str = "none", seed: int = 1) -> Any:
    """Under the fault simulator (three nodes, 1,500 operations, ``faults``): the same seed
    gives the same trace, and after quiescence every node agrees on a final count its
    specification allows. Returns the result, for checks of the plug-in's own."""
    from .sim import run_scenario, standard_scenario

    assert simulable(cls), f"{cls.__name__} has no replica the simulator can run"
    scenario = standard_scenario(faults, seed=seed, nodes=3, operations=1500)
    result = run_scenario(cls, scenario)
    again = run_scenario(cls, scenario)
    assert result.trace_hash == again.trace_hash, "same seed, different trace: not deterministic"
    final = result.final
    assert final.agree, f"the nodes' final counts disagree: {final.values}"
    assert all(final.in_spec), (
        f"final counts {final.values}, the specification allows {final.allowed}"
    )
    return result
