"""The simulator's request replicas: ``aggregate`` (a read asks every node and sums what
answers in time) and ``session`` (node 0 holds the table, the other nodes forward to it).

What is pinned down here: their runs are deterministic; without faults they end exact and
pass; a partition makes ``aggregate`` reads partial (under-counting) and healing makes
them exact again; a crash loses the crashed node's sessions (``aggregate``) or its users'
operations (``session``); a ``session`` front-end cut off from node 0 loses operations
and its reads fail, never answering a wrong value, which the strong rule does not count
against it, while the server losing its table in a crash fails the claim.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countbench.bench.measure import simulate
from countbench.bench.sim import (
    CrashFault,
    PartitionFault,
    Scenario,
    SimResult,
    run_scenario,
    standard_scenario,
)
from countbench.bench.sim.clients import ClientOp
from countbench.bench.sim.engine import Simulation
from countbench.bench.workload import WorkloadSpec
from countbench.strategies.aggregate import AggregateOnDemand, AggregateReplica
from countbench.strategies.base import (
    Answer,
    Message,
    Replica,
    RequestReplica,
    StrategyConfig,
    simulable,
)
from countbench.strategies.session import SessionReplica, SessionStrategy

SMALL = Scenario(nodes=4, users=150, operations=1500, session_timeout=120.0, seed=3)
QUIET = {"vanish_rate": 0.0}
BOTH = ["session", "aggregate"]


def small(**changes: object) -> Scenario:
    return SMALL.with_overrides(**changes)


def reads(result: SimResult) -> list[tuple[float, int, str]]:
    """Every client read that got an answer line: (start, node, answer) from the trace."""
    started: dict[str, tuple[float, int]] = {}
    out: list[tuple[float, int, str]] = []
    for line in result.trace:
        if m := re.fullmatch(r"(\S+) r n(\d+) #(\d+)", line):
            started[m[3]] = (float(m[1]), int(m[2]))
        elif (m := re.fullmatch(r"\S+ a #(\d+) (.+)", line)) and m[1] in started:
            start, node = started.pop(m[1])
            out.append((start, node, m[2]))
    return out


# -- the protocol and the twins -------------------------------------------------------------


def test_both_are_simulable_request_replicas() -> None:
    config = StrategyConfig(nodes=3, session_timeout=60.0)
    for cls in (AggregateOnDemand, SessionStrategy):
        assert simulable(cls)
        replica = cls(config).replica(1)  # type: ignore[attr-defined]
        assert isinstance(replica, RequestReplica) and isinstance(replica, Replica)
        assert replica.request_timeout == 2.0


def test_aggregate_read_sums_the_answers_in_time_and_is_partial_without_the_rest() -> None:
    nodes = [AggregateReplica(i, 3, 60.0, 2.0) for i in range(3)]
    nodes[0].request(1, "login", "a", 0.0)
    nodes[1].request(2, "login", "b", 0.0)
    nodes[2].request(3, "login", "c", 0.0)
    assert [n.poll(0.0)[1] for n in nodes] == [[Answer(i + 1, True)] for i in range(3)]
    nodes[0].request(7, "count", "", 1.0)
    asks, done = nodes[0].poll(1.0)
    assert done == [] and [m.dst for m in asks] == [1, 2]
    reply = nodes[1].receive(asks[0], 1.1)
    assert nodes[0].receive(reply[0], 1.2) == []
    assert nodes[0].receive(reply[0], 1.2) == []  # a duplicate answer counts once
    assert nodes[0].poll(2.9) == ([], [])  # node 2 still may answer
    assert nodes[0].poll(3.0) == ([], [Answer(7, True, 2, partial=True)])
    nodes[0].request(8, "count", "", 4.0)
    asks, _ = nodes[0].poll(4.0)
    for ask in asks:
        nodes[0].receive(nodes[ask.dst or 0].receive(ask, 4.1)[0], 4.2)
    assert nodes[0].poll(4.2) == ([], [Answer(8, True, 3)])
    assert nodes[0].receive(reply[0], 4.3) == []  # an answer to a finished read: ignored


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.booleans(), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_session_server_orders_each_users_login_and_logout_by_client_time(
    logins: list[bool], rng: object
) -> None:
    """Forwarded logins and logouts of one user arrive in any order, some twice: the
    server ends with the state of the latest one the client sent."""
    import random

    assert isinstance(rng, random.Random)
    server, front = SessionReplica(0, 1000.0, 100.0), SessionReplica(1, 1000.0, 100.0)
    sent: list[Message] = []
    for i, login in enumerate(logins):
        front.request(i, "login" if login else "logout", "u", float(i))
        sent.extend(front.poll(float(i))[0])
    arrivals = sent + rng.sample(sent, k=len(sent) // 2)
    rng.shuffle(arrivals)
    for message in arrivals:
        for reply in server.receive(message, 50.0):
            front.receive(reply, 50.1)
    assert server.count(60.0) == int(logins[-1])
    answers = front.poll(60.0)[1]
    assert sorted(a.request_id for a in answers) == list(range(len(logins)))
    assert all(a.ok for a in answers)


def test_session_front_end_without_an_answer_fails_at_the_deadline() -> None:
    front = SessionReplica(2, 60.0, 2.0)
    front.request(5, "count", "", 10.0)
    asks, _ = front.poll(10.0)
    assert [(m.src, m.dst) for m in asks] == [(2, 0)]
    assert front.poll(11.9) == ([], [])
    assert front.poll(12.0) == ([], [Answer(5, False)])
    assert front.count(12.0) == 0  # a front-end holds no copy


# -- whole runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", BOTH)
def test_fault_free_runs_end_exact_and_pass(strategy: str) -> None:
    result = run_scenario(strategy, small(**QUIET))
    assert result.passed, result.verdict
    assert result.final.errors == [0] * 4 and result.final.agree
    assert result.quiescence.truth_after is not None
    assert result.reads_rejected == result.reads_partial == result.operations.rejected == 0
    assert result.reads.samples == result.operations.reads > 0
    # A read is a few message latencies long: it is never off by more than a handful.
    assert result.reads.max <= 2
    assert result.cost.messages > 0 and result.cost.metadata_bytes_max == 0
    assert result.to_dict()["reads"]["partial"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("strategy", BOTH)
def test_same_seed_same_trace(strategy: str) -> None:
    scenario = standard_scenario(
        "partition,duplicate,loss,reorder,crash", nodes=4, users=150, operations=1500, seed=5
    )
    first, second = run_scenario(strategy, scenario), run_scenario(strategy, scenario)
    assert first.trace == second.trace and first.trace_hash == second.trace_hash
    assert first.to_dict() == second.to_dict()
    hashed = run_scenario(strategy, scenario, keep_trace=False)
    assert (hashed.trace_hash, hashed.trace_lines) == (first.trace_hash, first.trace_lines)
    assert run_scenario(strategy, scenario.with_overrides(seed=6)).trace_hash != first.trace_hash


def test_aggregate_partition_reads_are_partial_then_exact_after_healing() -> None:
    cut = PartitionFault(start=40, end=100, layout="halves")
    result = run_scenario("aggregate", small(faults=(cut,), **QUIET))
    assert result.passed, result.verdict
    assert result.reads_rejected == 0 < result.reads_partial
    seen = reads(result)
    during = [a for start, _, a in seen if 40 <= start < 100]
    after = [a for start, _, a in seen if start >= 100]
    assert during and all(a.endswith("partial") for a in during)
    assert after and not any(a.endswith("partial") for a in after)
    assert result.error["fault"].bias < 0  # partial reads leave sessions out: under-count
    assert result.error["fault"].mean > 10 * result.error["healthy"].mean
    assert result.final.errors == [0] * 4  # writes are local: nothing was lost
    assert result.convergence[0].truth_after is not None


@pytest.mark.slow
def test_aggregate_crash_loses_the_crashed_nodes_sessions() -> None:
    crash = CrashFault(start=40, end=100, node=1)
    lost = run_scenario("aggregate", small(faults=(crash,), **QUIET))
    assert lost.passed, lost.verdict  # eventual: the nodes agree, on a lower count
    assert lost.final.agree and lost.final.errors[0] < 0
    assert lost.reads_rejected > 0 and lost.reads_partial > 0
    persisted = CrashFault(start=40, end=100, node=1, persist=True)
    kept = run_scenario("aggregate", small(faults=(persisted,), **QUIET))
    assert kept.passed, kept.verdict
    # Its sessions kept, the restarted node under-counts less after the restart.
    assert kept.error["healthy"].bias > lost.error["healthy"].bias
    assert kept.final.errors[0] >= lost.final.errors[0]


def test_session_front_end_cut_from_the_server_loses_operations_and_its_reads_fail() -> None:
    cut = PartitionFault(start=40, end=100, layout="isolate", node=2)
    result = run_scenario("session", small(faults=(cut,), **QUIET))
    answers = [(node, a) for start, node, a in reads(result) if 40 <= start < 100]
    assert {a for node, a in answers if node == 2} == {"failed"}
    assert all(a != "failed" for node, a in answers if node != 2)
    assert result.reads_rejected == len([1 for node, _ in answers if node == 2]) > 0
    assert result.operations.rejected > result.reads_rejected  # writes lost as well
    assert result.error["all"].max > 0
    # When the faults end, the clients whose logins and logouts got no answer send them
    # again (as reconnecting clients would): the final counts are exact again.
    assert result.operations.retries > 0 and result.final.errors == [0] * 4
    # Jepsen's view: a failed read is unavailability, not a wrong read, and reads that
    # miss failed writes are explained by them: the strong claim holds.
    assert result.passed, result.verdict
    assert result.verdict.claim == "strong"


def test_session_server_losing_its_table_fails_the_strong_claim() -> None:
    crash = CrashFault(start=40, end=50, node=0)
    lost = run_scenario("session", small(faults=(crash,), **QUIET))
    assert lost.verdict.bug
    assert any(
        "outside the allowed values beyond the operations in doubt" in r
        for r in lost.verdict.reasons
    )
    persisted = CrashFault(start=40, end=50, node=0, persist=True)
    kept = run_scenario("session", small(faults=(persisted,), **QUIET))
    assert kept.passed, kept.verdict


class LyingSession(SessionStrategy):
    """A broken twin: front-ends add one to every count the server answers."""

    name = "lying-session"

    def replica(self, node_id: int) -> SessionReplica:
        replica = super().replica(node_id)
        if node_id == 0:
            return replica
        poll = replica.poll

        def lying(now: float) -> tuple[list[Message], list[Answer]]:
            messages, answers = poll(now)
            fixed = [Answer(a.request_id, a.ok, a.value + 1) if a.value else a for a in answers]
            return messages, fixed

        replica.poll = lying  # type: ignore[method-assign]
        return replica


def test_the_strong_rule_catches_a_read_that_returns_a_wrong_value() -> None:
    result = run_scenario(LyingSession, small(**QUIET))
    assert result.verdict.bug
    assert any("answered read(s) outside the allowed" in r for r in result.verdict.reasons)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", BOTH)
def test_every_standard_fault_gives_a_verdict(strategy: str) -> None:
    names = "partition,isolate,oneway,duplicate,loss,reorder,latency,crash-persist"
    scenario = standard_scenario(names, nodes=5, users=200, operations=2500, seed=2)
    result = run_scenario(strategy, scenario.with_overrides(session_timeout=120.0))
    assert result.passed, result.verdict
    assert result.final.agree
    # A crash without persistence: aggregate's node loses the sessions it alone held,
    # acknowledged ones, which its specification does not allow; session's crashed node
    # is a front-end (node 1), which holds none.
    crashed = standard_scenario(f"{names},crash", nodes=5, users=200, operations=2500, seed=2)
    result = run_scenario(strategy, crashed.with_overrides(session_timeout=120.0))
    assert result.passed is (strategy == "session"), result.verdict


@pytest.mark.slow
@pytest.mark.parametrize("strategy", BOTH)
def test_compare_gets_a_simulated_consistency_cell(strategy: str) -> None:
    cls = {"session": SessionStrategy, "aggregate": AggregateOnDemand}[strategy]
    cell = simulate(cls, WorkloadSpec(nodes=3, seed=2))
    assert cell is not None and cell["nodes"] == 3
    assert cell["verdict"]["claim"] == str(cls.consistency)
    assert len(cell["trace_sha256"]) == 64


@pytest.mark.slow
@pytest.mark.parametrize("strategy", BOTH)
def test_five_nodes_ten_thousand_operations_under_every_fault(strategy: str) -> None:
    scenario = standard_scenario("partition,duplicate,loss,reorder,crash", nodes=5)
    result = run_scenario(strategy, scenario, keep_trace=False)
    ops = result.operations
    assert ops.reads > 0
    assert ops.logins + ops.logouts + ops.heartbeats + ops.reads + ops.vanished == 10_000


@pytest.mark.slow
@pytest.mark.parametrize("strategy", BOTH)
def test_chaos_command_runs_them_on_the_simulator(strategy: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env["COLUMNS"] = "120"
    cmd = [sys.executable, "-m", "countbench.bench.cli", "chaos", "--strategy", strategy]
    done = subprocess.run(
        [*cmd, "--faults", "partition", "--seed", "3", "--nodes", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "trace sha256" in done.stdout
    verdicts = [line for line in done.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(verdicts) == 1
    assert verdicts[0].startswith("PASS") == (done.returncode == 0)


def test_a_failed_login_puts_its_user_in_doubt_once() -> None:
    scenario = Scenario(nodes=3, users=10, operations=20, seed=1)
    config = StrategyConfig(nodes=3, session_timeout=scenario.session_timeout)
    sim = Simulation(SessionStrategy(config), scenario)
    rid = sim._request(1.0, 1, int(ClientOp.LOGIN), 4, "login")
    assert (sim.doubtful, sim.doubt_entries) == (1, 1)  # in flight
    sim._answer(3.0, Answer(rid, False))  # no answer: its effect is unknown
    assert (sim.doubtful, sim.doubt_entries) == (1, 1)  # still in doubt, entered once
    acked = sim._request(4.0, 1, int(ClientOp.LOGOUT), 4, "logout")
    sim._answer(4.1, Answer(acked, True))
    assert (sim.doubtful, sim.doubt_entries) == (0, 1)
