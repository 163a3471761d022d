"""Tests of the deterministic fault simulator (``countbench.bench.sim``) and ``chaos``.

Exact relations tested, at the end of quiescence, without crashes (so no operation is
rejected) and with every node converged:

* pncounter: every node's value = accepted logins - accepted logouts, and
  value - truth = vanished - vanished_unexpired (each session ended by vanishing is a
  missing decrement; a vanished user still inside the timeout, and not back in a new
  session, is still online in the truth);
* gcounter: value - truth = accepted logouts + vanished - vanished_unexpired (it counts
  logins only).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from countbench.bench import shaped
from countbench.bench.chaos_cli import build_scenario, chaos
from countbench.bench.sim import (
    CrashFault,
    DuplicateFault,
    Fault,
    LatencyFault,
    LossFault,
    PartitionFault,
    Scenario,
    SimResult,
    SimUsageError,
    client_span,
    run_scenario,
    standard_scenario,
)
from countbench.bench.sim.result import decode_series, encode_series
from countbench.reports.plot import run_length_series
from countbench.reports.sparkline import sparkline
from countbench.strategies.base import Message, Replica
from countbench.strategies.pncounter import PNCounterReplica, PNCounterStrategy
from helpers import partition_schedules, partitioned

SMALL = Scenario(nodes=4, users=150, operations=1500, session_timeout=120.0, seed=3)
QUIET = {"vanish_rate": 0.0}


def small(**changes: object) -> Scenario:
    return SMALL.with_overrides(**changes)


def check_converged(result: SimResult) -> None:
    final = result.final
    assert final.agree, final
    assert result.verdict.passed, result.verdict
    assert result.quiescence.agree_after is not None


def check_counter_relations(result: SimResult) -> None:
    """The exact relations of the module docstring (no crash in the scenario)."""
    final, ops = result.final, result.operations
    assert ops.rejected == 0
    lag = final.vanished - final.vanished_unexpired
    if result.strategy == "pncounter":
        assert final.values == [final.accepted_balance] * len(final.values)
        assert final.errors == [lag] * len(final.values)
    else:
        assert final.errors == [ops.accepted_logouts + lag] * len(final.values)


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    scenario = standard_scenario(
        "partition,duplicate,loss,reorder,crash", nodes=4, users=150, operations=1500, seed=5
    )
    first = run_scenario("pncounter", scenario)
    second = run_scenario("pncounter", scenario)
    assert first.trace == second.trace
    assert first.trace_hash == second.trace_hash
    assert first.to_dict() == second.to_dict()
    other = run_scenario("pncounter", scenario.with_overrides(seed=6))
    assert other.trace_hash != first.trace_hash
    # Hashing the lines as they come, without keeping them, gives the same fingerprint.
    hashed = run_scenario("pncounter", scenario, keep_trace=False)
    assert hashed.trace == [] and first.trace_lines == len(first.trace) > 1000
    assert (hashed.trace_hash, hashed.trace_lines) == (first.trace_hash, first.trace_lines)
    assert hashed.to_dict() == first.to_dict()


@pytest.mark.slow
def test_trace_does_not_depend_on_hash_randomisation() -> None:
    code = (
        "from countbench.bench.sim import run_scenario, standard_scenario\n"
        "s = standard_scenario('partition,duplicate', nodes=3, users=80, operations=600)\n"
        "names = ('gcounter', 'compact', 'orset', 'aggregate', 'session')\n"
        "print([run_scenario(name, s).trace_hash for name in names])\n"
    )
    hashes = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        hashes.add(done.stdout.strip())
    assert len(hashes) == 1


# -- every fault alone, and together -----------------------------------------------------------

ALONE: list[Fault] = [
    LatencyFault(start=30, end=120, latency=0.3, jitter=2.5),
    DuplicateFault(start=30, end=120, probability=0.5),
    LossFault(start=30, end=120, probability=0.5),
    PartitionFault(start=30, end=120, layout="halves"),
    PartitionFault(start=30, end=120, layout="isolate", node=2),
    PartitionFault(start=30, end=120, layout="minority"),
    PartitionFault(start=30, end=120, layout="groups", groups=((0,), (1, 2))),
    PartitionFault(start=30, end=120, layout="random"),
    PartitionFault(start=30, end=120, layout="halves", one_way=True),
    PartitionFault(start=30, end=None, layout="halves"),
    CrashFault(start=30, end=120, node=1),
    CrashFault(start=30, end=120, node=1, persist=True),
    CrashFault(start=30, end=None, node=3),
]


@pytest.mark.parametrize("fault", ALONE, ids=[f"{f.type}{i}" for i, f in enumerate(ALONE)])
@pytest.mark.parametrize("strategy", ["gcounter", "pncounter"])
def test_each_fault_alone_runs_and_measures(strategy: str, fault: Fault) -> None:
    result = run_scenario(strategy, small(faults=(fault,)))
    data = result.to_dict()
    assert data["faults"][0]["applied"]
    assert result.error["fault"].samples > 0
    assert result.error["healthy"].samples > 0
    assert result.staleness.changes > 0
    assert result.cost.messages > 0
    assert result.cost.metadata_bytes_max > 0
    check_converged(result)
    if fault.end is not None:
        assert [c.label for c in result.convergence] == [fault.label()]
        assert result.convergence[0].drained_after is not None
    json.dumps(data)  # JSON-able
    if isinstance(fault, CrashFault):
        assert result.operations.rejected > 0
        assert result.cost.to_down_node > 0
    elif isinstance(fault, PartitionFault):
        assert result.cost.cut > 0
        check_counter_relations(result)
    else:
        check_counter_relations(result)


def test_all_faults_together() -> None:
    combined: tuple[Fault, ...] = (
        LatencyFault(start=10, end=60, latency=0.2, jitter=3.0),
        DuplicateFault(start=20, end=90, probability=0.4),
        LossFault(start=40, end=110, probability=0.4),
        PartitionFault(start=70, end=130, layout="halves"),
        CrashFault(start=100, end=150, node=1),
        PartitionFault(start=150, end=None, layout="isolate", node=3, one_way=True),
    )
    result = run_scenario("pncounter", small(faults=combined))
    assert all(f["applied"] for f in result.faults)
    assert result.cost.duplicated > 0 and result.cost.lost > 0 and result.cost.cut > 0
    assert result.error["fault"].samples > 0
    check_converged(result)


# -- exact outcomes -------------------------------------------------------------------------


def test_pncounter_without_faults_or_vanishing_is_exact() -> None:
    result = run_scenario("pncounter", small(**QUIET))
    check_converged(result)
    assert result.final.errors == [0] * 4
    assert result.quiescence.truth_after is not None
    assert result.staleness.never == 0


def test_duplication_does_not_break_the_state_based_pncounter() -> None:
    faults = (DuplicateFault(start=0, end=None, probability=0.9),)
    result = run_scenario("pncounter", small(faults=faults, **QUIET))
    assert result.cost.duplicated > 1000
    check_converged(result)
    assert result.final.errors == [0] * 4


def test_vanishing_users_make_counters_overcount_by_the_expired_vanished() -> None:
    scenario = small(vanish_rate=0.5)
    pn = run_scenario("pncounter", scenario)
    assert pn.final.vanished > 0
    # grace = session_timeout + 10 syncs: every vanished session has expired by the end
    assert pn.final.vanished_unexpired == 0
    assert pn.final.errors == [pn.final.vanished] * 4
    check_counter_relations(pn)
    g = run_scenario("gcounter", scenario)
    assert g.final.errors == [g.operations.accepted_logouts + g.final.vanished] * 4
    check_counter_relations(g)
    short = run_scenario("pncounter", scenario.with_overrides(grace=5.0))
    assert short.final.vanished_unexpired > 0
    check_counter_relations(short)


class NodeKeyedReplica(PNCounterReplica):
    """The PN-counter replica as it was: one entry per node id, whatever the incarnation."""

    def login(self, user: str, now: float) -> None:
        self.state.increment(self.node_id)

    def logout(self, user: str, now: float) -> None:
        self.state.decrement(self.node_id)


class NodeKeyedStrategy(PNCounterStrategy):
    name = "test-node-keyed-pncounter"
    summary = "test only: entries keyed by node id, no incarnation"

    def replica(self, node_id: int) -> Replica:
        return NodeKeyedReplica(node_id)


class QuestionOnlyReplica(PNCounterReplica):
    """A PN-counter replica whose syncs claim to carry nothing (``informs`` False)."""

    def sync(self, now: float) -> list[Message]:
        return [replace(m, informs=False) for m in super().sync(now)]


class QuestionOnlyStrategy(PNCounterStrategy):
    name = "test-question-only-pncounter"
    summary = "test only: syncs marked as carrying no state"

    def replica(self, node_id: int) -> Replica:
        return QuestionOnlyReplica(node_id)


def test_a_message_that_informs_nothing_teaches_the_simulator_nothing() -> None:
    """The values still converge (the state did travel), but staleness, which follows
    what the messages claim to carry, sees no change reach another node."""
    plain = run_scenario("pncounter", small(**QUIET))
    asked = run_scenario(QuestionOnlyStrategy, small(**QUIET))
    assert plain.final.values == asked.final.values
    assert plain.staleness.reflected == plain.staleness.changes > 0
    assert asked.staleness.reflected == 0
    assert asked.staleness.never == asked.staleness.changes


def test_restart_without_persisted_state_loses_only_what_it_never_sent() -> None:
    """Node 0 is isolated, crashes, restarts empty while still isolated, and counts again.
    What its first incarnation accepted while isolated is lost (never reflected anywhere,
    and it shows in ``staleness.never``); what the new incarnation accepts is kept, in a
    new entry, where a max-merge over one entry per node id hid it."""
    faults: tuple[Fault, ...] = (
        PartitionFault(start=40, end=160, layout="isolate", node=0),
        CrashFault(start=80, end=100, node=0),
    )
    lost = run_scenario("pncounter", small(faults=faults, **QUIET))
    check_converged(lost)
    never = lost.staleness.never
    assert never > 0  # changes node 0 accepted while isolated, then lost
    gap = lost.final.values[0] - lost.final.accepted_balance
    assert gap != 0 and abs(gap) <= never
    persisted = (faults[0], CrashFault(start=80, end=100, node=0, persist=True))
    kept = run_scenario("pncounter", small(faults=persisted, **QUIET))
    check_converged(kept)
    assert kept.final.values == [kept.final.accepted_balance] * 4
    assert kept.staleness.never == 0


#: Node 0 crashes just after its sync at 80.25 (node i of 4 syncs at (i + 1) / 4 + k) and
#: restarts empty at 100 inside a partition that isolates it until 160: its old
#: incarnation lost nothing unsent, its new one accepts changes that only merge at 160.
RESTART = (
    CrashFault(start=80.26, end=100, node=0),
    PartitionFault(start=90, end=160, layout="isolate", node=0),
)


@pytest.mark.parametrize("strategy", ["pncounter", "gcounter", "compact"])
def test_a_restarted_replica_writes_a_fresh_entry_and_loses_nothing(strategy: str) -> None:
    result = run_scenario(strategy, small(faults=RESTART))
    check_converged(result)
    final, ops = result.final, result.operations
    assert ops.rejected > 0  # node 0 was down
    assert result.staleness.never == 0  # every accepted change reached every node
    if strategy != "gcounter":
        # Nothing the cluster accepted is lost: the error is the truth's own events the
        # counter could not see (vanished sessions, operations refused by the down node).
        assert final.values == [final.accepted_balance] * 4
        assert final.errors == [final.accepted_balance - final.truth] * 4
    else:
        assert final.values == [ops.accepted_logins] * 4


def test_node_keyed_entries_lost_the_restarted_replicas_counts() -> None:
    """The same run with the old one-entry-per-node-id replica: every change is known
    everywhere, yet the value misses the new incarnation's changes."""
    old = run_scenario(NodeKeyedStrategy, small(faults=RESTART))
    new = run_scenario("pncounter", small(faults=RESTART))
    assert old.final.agree and old.staleness.never == 0
    assert old.final.accepted_balance == new.final.accepted_balance
    assert old.final.values[0] != old.final.accepted_balance
    assert new.final.values[0] == new.final.accepted_balance
    assert abs(new.final.errors[0]) < abs(old.final.errors[0])


CRASH = st.tuples(st.floats(0.0, 0.9), st.floats(0.01, 0.3), st.integers(0, 4), st.booleans())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    nodes=st.integers(2, 5),
    crashes=st.lists(CRASH, min_size=1, max_size=3),
    strategy=st.sampled_from(["gcounter", "pncounter"]),
)
def test_crashes_lose_at_most_the_changes_never_reflected(
    seed: int, nodes: int, crashes: list[tuple[float, float, int, bool]], strategy: str
) -> None:
    """Crashes without persisted state, some inside a partition isolating the crashed
    node: after quiescence every node agrees on the count of what was accepted, less
    at most one per change that never reached the others (lost with an incarnation)."""
    base = Scenario(nodes=nodes, users=80, operations=800, seed=seed, session_timeout=90.0)
    span = client_span(base)
    # One outage at a time, with time to resync after it (and its partition): when two
    # nodes are down together, a change that had reached only those two is lost as well.
    windows = sorted(
        (round(a * span, 3), round(a * span, 3) + 2 * max(1.0, round(d * span, 3)) + 10.0)
        for a, d, _, _ in crashes
    )
    assume(all(end <= start for (_, end), (start, _) in itertools.pairwise(windows)))
    faults: list[Fault] = []
    for a, d, node, isolated in crashes:
        start, length = round(a * span, 3), max(1.0, round(d * span, 3))
        faults.append(CrashFault(start=start, end=start + length, node=node % nodes))
        if isolated and nodes > 1:
            around = PartitionFault(
                start=start, end=start + 2 * length, layout="isolate", node=node % nodes
            )
            faults.append(around)
    result = run_scenario(strategy, base.with_overrides(faults=tuple(faults)))
    check_converged(result)
    final, never = result.final, result.staleness.never
    accepted = (
        final.accepted_balance if strategy == "pncounter" else (result.operations.accepted_logins)
    )
    assert abs(final.values[0] - max(0, accepted)) <= never, (final, never)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    nodes=st.integers(2, 5),
    schedule=partition_schedules(),
    strategy=st.sampled_from(["gcounter", "pncounter"]),
)
def test_random_healing_partitions_converge(
    seed: int,
    nodes: int,
    schedule: list[tuple[float, float, str, bool, int]],
    strategy: str,
) -> None:
    result = run_scenario(strategy, partitioned(nodes, seed, schedule))
    check_converged(result)
    check_counter_relations(result)


# -- cost and speed -------------------------------------------------------------------------


def test_five_nodes_ten_thousand_operations_under_every_fault() -> None:
    """Every operation of the standard scenario runs under every fault (its speed is
    ``python -m countbench.bench.sim.speed``'s business, not a unit test's)."""
    scenario = standard_scenario("partition,duplicate,loss,reorder,crash", nodes=5)
    result = run_scenario("pncounter", scenario)
    ops = result.operations
    assert ops.logins + ops.logouts + ops.heartbeats + ops.reads + ops.vanished == 10_000


def test_speed_command_times_each_strategy_and_fails_over_the_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from countbench.bench.sim.speed import main

    small_run = ["--nodes", "3", "--operations", "300", "--strategies", "pncounter,gcounter"]
    assert main([*small_run, "--limit", "60"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("simulator: 3 nodes, 10,000 users, 300 operations")
    assert "broadcast to every node" in lines[0]  # fan-out 3 of 3 nodes: every other node
    idle, *timed = lines[1:]
    assert idle.strip().startswith("simulator alone: ") and idle.endswith("no strategy work")
    for name, line in zip(("pncounter", "gcounter"), timed, strict=True):
        seconds = float(line.split(":")[1].split("s")[0])
        assert line.strip().startswith(f"{name}: ") and 0 <= seconds < 60
        assert "deliveries" in line and "verdict PASS" in line
        assert " MB · " in line and "|error| max " in line and "count's age p99 " in line
        # the idle replicas ran the same scenario: the same events, and a message per sync
        assert line.split(" · ")[1:3] == idle.split(" · ")[1:3]
    # A limit no child process can meet: stopped, reported, exit status 1.
    assert main([*small_run, "--limit", "0.001"]) == 1
    out = capsys.readouterr().out
    assert "simulator alone: over 0.001s (stopped after" in out
    assert "pncounter: over 0.001s (stopped after" in out
    for bad, words in ((["--nodes", "0"], "nodes"), (["--strategies", "local"], "not replicated")):
        assert main(bad) == 2
        error = capsys.readouterr().err
        assert error.startswith("countbench: error: ") and words in error
        assert error.count("\n") == 1


# -- scenarios, errors, the command -------------------------------------------------------


def test_scenario_round_trips_through_a_mapping() -> None:
    scenario = small(faults=tuple(ALONE))
    assert Scenario.from_mapping(scenario.to_dict()) == scenario
    assert Scenario.from_mapping({"scenario": {"nodes": 3}}).nodes == 3


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"nodes": 0}, "nodes"),
        ({"colour": 1}, "unknown field"),
        ({"vanish_rate": 2}, "vanish_rate"),
        ({"heartbeat_interval": 500.0}, "heartbeat_interval"),
        ({"faults": [{"type": "meteor", "start": 1}]}, "unknown fault type"),
        ({"faults": [{"type": "crash", "start": 1, "node": 9}]}, "crash node"),
        ({"faults": [{"type": "loss", "start": 5, "end": 2}]}, "end"),
        ({"faults": [{"type": "loss"}]}, "start"),
        ({"nodes": 1, "faults": [{"type": "partition", "start": 1}]}, "2 nodes"),
    ],
)
def test_bad_scenarios_are_one_line_errors(data: dict[str, object], words: str) -> None:
    with pytest.raises(SimUsageError, match=words) as caught:
        Scenario.from_mapping(data)
    assert "\n" not in str(caught.value)


def test_strategy_errors() -> None:
    with pytest.raises(SimUsageError, match="unknown strategy"):
        run_scenario("nonesuch", SMALL)
    with pytest.raises(SimUsageError, match="not replicated"):
        run_scenario("local", SMALL)


def test_sparkline() -> None:
    bars, marks = sparkline([0, 4, 8], [False, True, False])
    assert bars == "▁▅█" and marks == " ▀ "
    assert sparkline([0, 0], [False, False])[0] == "▁▁"


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("chaos")(chaos)

    @app.command("other")
    def other() -> None:  # a second command, so "chaos" is a subcommand
        """Nothing."""

    return app


def test_chaos_command_prints_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    args = ["chaos", "--strategy", "pncounter", "--faults", "partition,crash"]
    args += ["--nodes", "3", "--operations", "1200", "--seed", "4", "--json", str(out)]
    result = CliRunner().invoke(_app(), args, env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "staleness" in result.output
    assert "▀" in result.output  # fault windows marked under the sparkline
    data = json.loads(out.read_text())
    assert data["strategy"] == "pncounter" and data["seed"] == 4
    assert data["verdict"]["passed"] is True
    again = CliRunner().invoke(_app(), args)
    assert isinstance(again.exception, SimUsageError)  # the file exists, no --force
    assert "--force" in str(again.exception)


def test_chaos_command_reads_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "nodes = 3\noperations = 900\nusers = 90\n"
        '[[faults]]\ntype = "loss"\nstart = 10.0\nend = 50.0\nprobability = 0.4\n'
    )
    scenario = build_scenario("partition", 1, 5, 10_000, path)
    assert scenario.nodes == 3 and isinstance(scenario.faults[0], LossFault)
    assert build_scenario("partition", 9, 5, 10_000, path).seed == 9
    result = CliRunner().invoke(
        _app(), ["chaos", "--strategy", "gcounter", "--scenario", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "fault loss" in result.output


def test_chaos_command_fails_with_the_seed_when_nodes_do_not_agree(tmp_path: Path) -> None:
    """A partition that lasts until quiescence and a grace too short to sync: FAIL, exit 1."""
    path = tmp_path / "s.toml"
    path.write_text(
        "nodes = 3\noperations = 900\nusers = 90\ngrace = 0.1\nseed = 12\n"
        '[[faults]]\ntype = "partition"\nlayout = "isolate"\nstart = 10.0\n'
    )
    result = CliRunner().invoke(
        _app(), ["chaos", "--strategy", "pncounter", "--scenario", str(path)]
    )
    assert result.exit_code == 1, result.output
    assert "FAIL (seed 12)" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--strategy", "nonesuch"], "unknown strategy"),
        (["--strategy", "local"], "not replicated"),
        (["--strategy", "pncounter", "--faults", "meteor"], "unknown fault"),
        (["--strategy", "pncounter", "--nodes", "0"], "nodes"),
        (["--strategy", "pncounter", "--operations", "-5"], "operations"),
        (["--strategy", "pncounter", "--scenario", "missing.toml"], "no such file"),
        (["--strategy", "pncounter", "--scenario", "BAD"], "not valid TOML"),
        (["--strategy", "pncounter", "--json", "no/such/dir/x.json"], "does not exist"),
    ],
)
def test_chaos_command_bad_input(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "BAD").write_text("nodes = = 3\n")
    args = [str(tmp_path / a) if a in ("BAD", "missing.toml") else a for a in args]
    result = CliRunner().invoke(_app(), ["chaos", *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, SimUsageError), result.output
    assert words in str(result.exception)
    assert "\n" not in str(result.exception)


# -- per-node timeline ----------------------------------------------------------------------


def test_timeline_holds_each_nodes_signed_error_per_sample() -> None:
    crash = CrashFault(start=30, end=60, node=1)
    result = run_scenario("pncounter", small(faults=(crash,)))
    timeline = result.timeline
    samples = len(timeline.max_error)
    assert len(timeline.nodes) == 4
    assert all(len(series) == samples for series in timeline.nodes)
    interval = timeline.interval
    for k in range(samples):
        t = (k + 1) * interval
        errors = [series[k] for series in timeline.nodes]
        down = 30 <= t < 60
        assert (errors[1] is None) == down
        live = [abs(e) for e in errors if e is not None]
        assert max(live) == timeline.max_error[k]
    data = result.to_dict()["timeline"]
    assert len(data["nodes"]) == 4
    columns = [decode_series(series) for series in data["nodes"]]
    assert all(len(series) == data["columns"] == samples for series in columns)
    assert columns == timeline.nodes  # fewer samples than columns: each column one sample
    down = columns[1][29:59]  # samples at t = 30 .. 59
    assert down == [None] * 30 and "n*30" in data["nodes"][1]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.one_of(st.none(), st.integers(-3, 3), st.integers(-(10**6), 10**6))))
def test_node_series_run_length_round_trip(values: list[int | None]) -> None:
    text = encode_series(values)
    assert decode_series(text) == values
    assert run_length_series(text) == values  # the plot's reader agrees
    assert " " not in text and text.count(",") < max(1, len(values))


def test_node_columns_keep_the_largest_signed_error() -> None:
    from countbench.bench.sim.result import Timeline

    timeline = Timeline(
        1.0,
        [1, 3, 2, 0],
        [False, True, False, False],
        [[1, -3, 2, 0], [None, None, -2, None]],
    )
    assert timeline.buckets(2) == ([3, 2], [True, False])
    assert timeline.node_buckets(2) == [[-3, 2], [None, -2]]
    assert timeline.node_buckets(4) == timeline.nodes


# ---------------------------------------------------------------------------------------
# eventual: a service strategy with a replica twin
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("faults", ["partition,duplicate,reorder", "loss,partition"])
def test_eventual_twin_converges_to_the_truth(faults: str) -> None:
    """Local sessions with expiry, counts gossiped newest-wins: after quiescence and the
    last expiry every node equals the truth, vanished users included (unlike a counter)."""
    result = run_scenario("eventual", standard_scenario(faults, seed=3, nodes=5, operations=3000))
    check_converged(result)
    assert result.final.errors == [0] * 5
    assert result.operations.vanished > 0


def test_eventual_twin_loses_a_crashed_nodes_sessions() -> None:
    """The nodes agree, but on a count that lost acknowledged sessions (they lived only in
    the crashed node's memory; the others had its count, not its sessions): a bug against
    the sessions specification, not an excused loss."""
    result = run_scenario("eventual", standard_scenario("crash", seed=3, nodes=5, operations=3000))
    assert result.final.agree
    assert all(error < 0 for error in result.final.errors)
    low, _ = result.final.allowed
    assert all(value < low for value in result.final.values)
    assert result.verdict.bug
    assert "final count outside the allowed" in result.verdict.reasons[0]


def test_chaos_runs_eventual_on_the_simulator_when_faults_are_simulated() -> None:
    """`chaos --strategy eventual` means real faults; simulated fault names mean the twin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env["COLUMNS"] = "120"
    cmd = [sys.executable, "-m", "countbench.bench.cli", "chaos", "--strategy", "eventual"]
    result = subprocess.run(
        [*cmd, "--faults", "partition,duplicate", "--operations", "2000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "trace sha256" in result.stdout and "PASS" in result.stdout


def test_the_light_fault_names_are_the_presets_and_the_real_faults() -> None:
    from countbench.bench.fault_names import REAL, SIMULATED
    from countbench.bench.faults.runner import FAULTS
    from countbench.bench.sim import PRESETS

    assert tuple(PRESETS) == SIMULATED
    assert REAL == FAULTS


def test_a_shaped_scenario_on_the_simulator_measures_the_error_in_its_window(
    tmp_path: Path,
) -> None:
    """``disconnect`` on the simulator, no faults: session keeps the vanished users'
    sessions (timeout 180 s, longer than the window), so against the users really online
    its error in the window is about them, while its error against the simulator's truth
    (which counts a vanished user until the session expires) stays small; the same
    scenario without shapes has no window. Seeded: the same trace twice."""
    base = standard_scenario("none", seed=1, nodes=3, operations=2000)
    _, shapes = shaped.load("disconnect")
    plain = run_scenario("session", base).to_dict()
    first = run_scenario("session", replace(base, shapes=shapes)).to_dict()
    again = run_scenario("session", replace(base, shapes=shapes)).to_dict()
    assert "shaped" not in plain["error"]
    assert first["trace"]["sha256"] == again["trace"]["sha256"] != plain["trace"]["sha256"]
    assert first["error"]["shaped"]["max"] >= 20, first["error"]
    assert first["error"]["all"]["max"] <= 10, first["error"]
    assert first["scenario"]["shapes"][0]["kind"] == "disconnect"
    path = tmp_path / "shaped.toml"
    path.write_text(
        "nodes = 3\n[[shapes]]\nkind = 'storm'\nat = 0.5\nduration = 0.1\nshare = 0.5\n"
    )
    assert Scenario.from_toml(path).shapes[0].kind == "storm"
    path.write_text("[[shapes]]\nkind = 'flood'\nat = 0.5\nduration = 0.1\nshare = 0.5\n")
    with pytest.raises(SimUsageError, match="kind must be one of"):
        Scenario.from_toml(path)
