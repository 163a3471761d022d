"""The conformance kit (``countbench.bench.testing``): every built-in passes it, and each
check fails the mutant it is there to catch."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import pytest

from countbench.bench.testing import check_delivery, check_node, check_simulation
from countbench.strategies.base import (
    Consistency,
    LockedNode,
    Message,
    Mode,
    Node,
    Replica,
    ReplicatedStrategy,
    SharedStrategy,
    Strategy,
)
from countbench.strategies.local import LocalCounter
from countbench.strategies.pncounter import PNCounterReplica, PNCounterStrategy
from countbench.strategies.registry import BUILTINS
from countbench.strategies.spec import BALANCE

REPLICATED = [c for c in BUILTINS if issubclass(c, ReplicatedStrategy)]


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_every_builtin_keeps_the_node_contract(cls: type[Strategy]) -> None:
    check_node(cls)


@pytest.mark.parametrize("cls", REPLICATED, ids=lambda c: c.name)
def test_every_replicated_builtin_converges_under_any_delivery(
    cls: type[ReplicatedStrategy],
) -> None:
    check_delivery(cls, examples=15)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pncounter", "orset", "aggregate"])
def test_the_simulator_check_passes_sound_designs(name: str) -> None:
    cls = next(c for c in BUILTINS if c.name == name)
    result = check_simulation(cls, faults="partition")
    assert result.final.agree


# -- the smallest plug-in (the README of examples/countbench-hll shows the same code) -------


class TallyNode:
    value = 0

    def login(self, user: str, now: float) -> None:
        self.value += 1

    def logout(self, user: str, now: float) -> None:
        self.value -= 1

    def heartbeat(self, user: str, now: float) -> None:
        pass

    def count(self, now: float) -> int:
        return self.value


class Tally(SharedStrategy):
    name = "tally"
    summary = "Logins minus logouts in one counter under a lock."
    consistency = Consistency.STRONG
    specification = BALANCE

    def open(self, mode: Mode) -> Node:
        return LockedNode(TallyNode())


def test_the_smallest_plugin_passes_the_kit() -> None:
    check_node(Tally)
    source = inspect.getsource(TallyNode) + inspect.getsource(Tally)
    assert len([line for line in source.splitlines() if line.strip()]) <= 20


# -- mutants: each check must fail the broken design it names ------------------------------


class _Forgets:
    """A counter whose logout does nothing (its specification says it counts them)."""

    def __init__(self) -> None:
        self.value = 0

    def login(self, user: str, now: float) -> None:
        self.value += 1

    def logout(self, user: str, now: float) -> None:
        return None

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return self.value


class ForgetsLogouts(LocalCounter):
    name = "mutant-forgets-logouts"
    modes: ClassVar[frozenset[Mode]] = frozenset({Mode.THREAD})

    def open(self, mode: Mode) -> Node:
        return LockedNode(_Forgets())


class _AddsOnMerge(PNCounterReplica):
    """Adds a received state's value to its own instead of merging it: not idempotent."""

    def receive(self, message: Message, now: float) -> list[Message]:
        before = self.count(now)
        super().receive(message, now)
        if message.src != self.node_id:
            self.login(f"ghost-{before}", now)  # one more for every message received
        return []


class AddsOnMerge(PNCounterStrategy):
    name = "mutant-adds-on-merge"

    def replica(self, node_id: int) -> Replica:
        return _AddsOnMerge(node_id)


class _Random(PNCounterReplica):
    """Drops a random share of logouts from an unseeded generator: not deterministic."""

    def logout(self, user: str, now: float) -> None:
        import os

        if os.urandom(1)[0] < 200:
            super().logout(user, now)


class Unseeded(PNCounterStrategy):
    name = "mutant-unseeded"

    def replica(self, node_id: int) -> Replica:
        return _Random(node_id)


class NoName(PNCounterStrategy):
    name = "two words"


@pytest.mark.parametrize(
    ("check", "cls", "message"),
    [
        (check_node, ForgetsLogouts, "after a logout"),
        (check_node, NoName, "no spaces"),
        (check_delivery, AddsOnMerge, "disagree"),
        (check_simulation, Unseeded, "not deterministic"),
    ],
    ids=["forgets-logouts", "bad-name", "adds-on-merge", "unseeded"],
)
def test_each_check_fails_its_mutant(check: Any, cls: type[Strategy], message: str) -> None:
    with pytest.raises(AssertionError) as info:
        check(cls)
    assert message in str(info.value)
