"""Gossip fan-out in the simulator: a broadcast goes to ``fanout`` random peers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countbench.bench.chaos_cli import build_scenario, parse_fanout
from countbench.bench.sim import Scenario, SimUsageError, run_scenario, standard_scenario


def _sends(result_trace: list[str]) -> list[tuple[int, int]]:
    """(src, dst) of every message sent, from the trace's ``m src>dst`` lines."""
    pairs = []
    for line in result_trace:
        parts = line.split()
        if parts[1] == "m":
            src, dst = parts[2].split(">")
            pairs.append((int(src), int(dst)))
    return pairs


def test_a_fanout_of_every_other_node_is_the_full_broadcast() -> None:
    full = run_scenario("pncounter", Scenario(nodes=4, operations=600, seed=2))
    same = run_scenario("pncounter", Scenario(nodes=4, operations=600, seed=2, fanout=3))
    more = run_scenario("pncounter", Scenario(nodes=4, operations=600, seed=2, fanout=9))
    assert full.trace_hash == same.trace_hash == more.trace_hash
    assert Scenario(nodes=4, fanout=3).gossip is None and Scenario(nodes=4).spread_rounds == 0


def test_each_broadcast_goes_to_fanout_distinct_peers_drawn_by_seed() -> None:
    scenario = Scenario(nodes=12, operations=800, seed=5, fanout=2)
    result = run_scenario("pncounter", scenario)
    sends = _sends(result.trace)
    syncs = [line for line in result.trace if line.split()[1] == "s"]
    assert len(sends) == 2 * len(syncs)  # pncounter sends one broadcast per sync
    assert all(src != dst for src, dst in sends)
    for i in range(0, len(sends), 2):  # the two copies of one broadcast: distinct peers
        assert sends[i][0] == sends[i + 1][0] and sends[i][1] != sends[i + 1][1]
    assert len(set(sends)) > 12 * 2  # not the same two peers every time
    again = run_scenario("pncounter", scenario)
    other = run_scenario("pncounter", scenario.with_overrides(seed=6))
    assert again.trace_hash == result.trace_hash != other.trace_hash
    full = run_scenario("pncounter", scenario.with_overrides(fanout=None))
    assert result.cost.messages < full.cost.messages / 4


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fanout=st.integers(1, 3),
    strategy=st.sampled_from(["pncounter", "gcounter", "compact", "orset"]),
)
def test_state_based_designs_converge_by_gossip_under_partitions(
    seed: int, fanout: int, strategy: str
) -> None:
    scenario = standard_scenario(
        "partition", nodes=16, operations=1500, seed=seed, fanout=fanout, users=400
    )
    assert scenario.budget > Scenario(nodes=16).budget  # more rounds to reach everyone
    result = run_scenario(strategy, scenario, keep_trace=False)
    assert result.final.agree, result.verdict.reasons
    assert result.passed, result.verdict.reasons


def test_an_op_based_counter_never_converges_when_a_broadcast_reaches_some_peers() -> None:
    scenario = Scenario(nodes=10, operations=1500, seed=3, fanout=2)
    result = run_scenario("pncounter-op", scenario)
    assert not result.final.agree and not result.passed
    assert run_scenario("pncounter-op", scenario.with_overrides(fanout=None)).final.agree


@pytest.mark.parametrize("fanout", [0, -1, 1.5, True])
def test_a_bad_fanout_is_refused(fanout: object) -> None:
    with pytest.raises(SimUsageError, match="fanout"):
        Scenario(fanout=fanout).validate()  # type: ignore[arg-type]


def chaos(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "countbench.bench.cli", "chaos", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_chaos_takes_a_fanout_and_echoes_it(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["--strategy", "gcounter", "--nodes", "8", "--operations", "600", "--json", str(out)]
    result = chaos(*args, "--fanout", "2")
    assert result.returncode == 0, result.stderr
    assert "gossip to 2 random peers" in " ".join(result.stdout.split())
    assert json.loads(out.read_text())["scenario"]["fanout"] == 2
    bad_inputs = (
        ["-s", "pncounter", "--fanout", "0"],
        ["-s", "pncounter", "--fanout", "some"],
        ["-s", "redis-incr", "--fanout", "2"],
    )
    for bad in bad_inputs:
        failed = chaos(*bad)
        assert failed.returncode == 2 and failed.stderr.count("\n") == 1
        assert failed.stderr.startswith("countbench: error: ") and "fanout" in failed.stderr


def test_fanout_all_sets_a_scenario_files_gossip_back_to_every_node(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("nodes = 6\noperations = 300\nfanout = 2\n")
    assert build_scenario("partition", 1, 5, 10_000, path).fanout == 2  # the file's
    assert build_scenario("partition", 1, 5, 10_000, path, fanout=3).fanout == 3
    assert build_scenario("partition", 1, 5, 10_000, path, fanout="all").fanout is None
    assert build_scenario("partition", 1, 5, 10_000, None, fanout="all").fanout is None
    assert parse_fanout(" all") == "all" and parse_fanout("4") == 4 and parse_fanout(None) is None
    out = tmp_path / "r.json"
    args = ["--strategy", "gcounter", "--scenario", str(path), "--json", str(out)]
    result = chaos(*args, "--fanout", "all")
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["scenario"]["fanout"] is None
