"""Deliberately broken strategies: the simulator's metrics and verdict must catch them."""

from __future__ import annotations

from typing import ClassVar

from countbench.bench.sim import run_scenario, standard_scenario
from countbench.strategies.base import Consistency, Mode, Replica
from countbench.strategies.pncounter import PNCounterReplica, PNCounterStrategy

SCENARIO = dict(seed=3, nodes=3, operations=3000, vanish_rate=0.0)


class DropsLogouts(PNCounterReplica):
    """A PN-counter replica that loses one logout in a hundred."""

    def __init__(self, node_id: int) -> None:
        super().__init__(node_id)
        self.logouts = 0

    def logout(self, user: str, now: float) -> None:
        self.logouts += 1
        if self.logouts % 100:
            super().logout(user, now)


class DropsLogoutsStrategy(PNCounterStrategy):
    name = "broken-drops-logouts"
    summary = "test only: drops 1% of logouts"
    modes: ClassVar[frozenset[Mode]] = frozenset({Mode.THREAD})

    def replica(self, node_id: int) -> Replica:
        return DropsLogouts(node_id)


class DoubleCountsRelogin(PNCounterReplica):
    """Counts a login twice when the same user logs in again (as a retried login would)."""

    def __init__(self, node_id: int) -> None:
        super().__init__(node_id)
        self.seen: set[str] = set()

    def login(self, user: str, now: float) -> None:
        super().login(user, now)
        if user in self.seen:
            super().login(user, now)
        self.seen.add(user)


class DoubleCountsStrategy(PNCounterStrategy):
    name = "broken-double-counts"
    summary = "test only: a user's later logins count twice"
    consistency = Consistency.STRONG  # a claim the checker must refute
    modes: ClassVar[frozenset[Mode]] = frozenset({Mode.THREAD})

    def replica(self, node_id: int) -> Replica:
        return DoubleCountsRelogin(node_id)


def test_the_sound_counter_is_exact_without_vanishing_users() -> None:
    result = run_scenario(PNCounterStrategy, standard_scenario("none", **SCENARIO)).to_dict()
    assert result["final"]["max_abs_error"] == 0 and result["verdict"]["passed"]


def test_dropped_logouts_show_as_final_error() -> None:
    # Enough logouts (about a thousand) for one in a hundred to be dropped on every node.
    scenario = standard_scenario("none", **{**SCENARIO, "operations": 30000})
    result = run_scenario(DropsLogoutsStrategy, scenario).to_dict()
    assert result["operations"]["accepted_logouts"] > 600
    assert result["final"]["agree"]  # replicas agree with each other...
    assert result["final"]["max_abs_error"] > 0  # ...on a count that is wrong
    assert all(error > 0 for error in result["final"]["errors"])  # it over-counts


def test_a_strong_claim_with_double_counting_fails_the_verdict() -> None:
    result = run_scenario(DoubleCountsStrategy, standard_scenario("none", **SCENARIO)).to_dict()
    assert result["final"]["max_abs_error"] > 0
    assert not result["verdict"]["passed"]
    assert result["verdict"]["claim"] == "strong"
