"""Real faults for the service-backed strategies: the counter check on its own (with
hypothesis), then real servers paused and killed under real client processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countbench.bench.faults.history import Op, Outcome, check_counter
from countbench.bench.faults.report import to_dict, verdict
from countbench.bench.faults.runner import (
    RealFaultConfig,
    RealFaultError,
    RealFaultResult,
    run_real_faults,
)
from helpers import children

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

# ------------------------------------------------------------------ the counter check


@st.composite
def linearizable_history(draw: st.DrawFn) -> list[Op]:
    """Ops of a correct counter: each applied write takes effect at one instant inside its
    interval (an ``info`` write at any instant after its start, or never), each read
    returns the counter at one instant inside its interval. Times are multiples of 4;
    effects happen at 4k+1 and reads at 4k+3, so no two instants coincide."""
    n = draw(st.integers(1, 40))
    ops = []
    for i in range(n):
        kind = draw(st.sampled_from(["login", "logout", "count"]))
        start = 4 * draw(st.integers(0, 50))
        length = 4 * draw(st.integers(1, 5))
        outcome = draw(st.sampled_from(list(Outcome)))
        if kind == "count":
            outcome = Outcome.OK
            at = start + 4 * draw(st.integers(0, length // 4 - 1)) + 3
        elif outcome is Outcome.OK:
            at = start + 4 * draw(st.integers(0, length // 4 - 1)) + 1
        elif outcome is Outcome.INFO and draw(st.booleans()):
            at = start + 4 * draw(st.integers(0, 60)) + 1
        else:
            at = -1  # never applied
        ops.append((i, kind, float(start), float(start + length), outcome, at))
    history = []
    for i, kind, start, end, outcome, at in ops:
        value = None
        if kind == "count":
            value = sum(
                (1 if k == "login" else -1)
                for _, k, _, _, _, a in ops
                if k != "count" and 0 <= a < at
            )
        history.append(Op(i % 3, kind, "", start, end, outcome, 1, value))
    return history


@given(linearizable_history())
@settings(max_examples=300, deadline=None)
def test_a_correct_counter_passes_the_check(history: list[Op]) -> None:
    check = check_counter(history)
    assert check.valid, [(r.op, r.lower, r.upper) for r in check.invalid_reads]


@given(st.lists(st.sampled_from(["login", "logout"]), min_size=1, max_size=30), st.data())
@settings(max_examples=200, deadline=None)
def test_a_lost_acknowledged_login_is_caught(kinds: list[str], data: st.DataObject) -> None:
    """Sequential, all acknowledged: bounds are exact, so a read missing one login fails."""
    ops, value, t = [], 0, 0.0
    for kind in kinds:
        ops.append(Op(0, kind, "", t, t + 1, Outcome.OK))
        value += 1 if kind == "login" else -1
        t += 2
    lost = data.draw(st.sampled_from([i for i, k in enumerate(kinds) if k == "login"] or [-1]))
    if lost < 0:
        return
    reads = [Op(1, "count", "", t, t + 1, Outcome.OK, 1, value - 1)]
    check = check_counter(ops + reads)
    assert not check.valid
    assert check.lost == 1 and check.extra == 0


def test_bounds_of_a_read_follow_the_outcomes() -> None:
    ops = [
        Op(0, "login", "a", 0, 1, Outcome.OK),  # acknowledged before the read
        Op(0, "login", "b", 2, 3, Outcome.INFO),  # maybe applied
        Op(0, "logout", "a", 4, 5, Outcome.FAIL),  # certainly not applied
        Op(1, "count", "", 10, 11, Outcome.OK, 1, 2),
        Op(1, "count", "", 12, 13, Outcome.OK, 1, 3),  # above: at most 2 users online
    ]
    check = check_counter(ops, final=Op(-1, "count", "", 20, 21, Outcome.OK, 1, 0))
    assert [(r.lower, r.upper) for r in check.reads] == [(1, 2), (1, 2)]
    assert [r.valid for r in check.reads] == [True, False]
    assert check.extra == 1
    assert check.final is not None and check.final.below == 1  # the acked login is gone


# ------------------------------------------------------------------ real servers


def _run(
    strategy: str, faults: tuple[str, ...], persist: bool = False
) -> tuple[RealFaultResult, set[int]]:
    """Four clients for 3 s; the server processes and clients must all be gone after."""
    before = children()
    config = RealFaultConfig(
        strategy=strategy, faults=faults, clients=4, duration=3.0, read_ratio=0.1, persist=persist
    )
    result = run_real_faults(config)
    left = {pid for pid in children() - before if psutil.pid_exists(pid)}
    return result, left


@pytest.mark.parametrize("strategy", ["redis-incr"])
def test_retried_incr_counts_twice_after_a_pause(strategy: str) -> None:
    result, left = _run(strategy, ("pause", "pause"))
    assert not left
    check = result.check
    retried = sum(row["retried"] for row in result.per_client())
    assert retried > 0
    assert not check.valid, "a retried INCR/DECR applied twice must put reads out of bounds"
    passed, summary = verdict(result)
    assert not passed and "outside their bounds" in summary


@pytest.mark.parametrize("strategy", ["redis-set", "central"])
def test_idempotent_commands_survive_pauses_and_retries(strategy: str) -> None:
    result, left = _run(strategy, ("pause", "pause"))
    assert not left
    assert sum(row["retried"] for row in result.per_client()) > 0
    check = result.check
    assert check.valid, verdict(result)[1]
    assert check.final is not None and check.final.valid


@pytest.mark.parametrize("strategy", ["redis-zset", "central", "aggregate-remote", "redis-cluster"])
def test_a_restart_without_persistence_loses_acknowledged_logins(strategy: str) -> None:
    """(For aggregate-remote, node 0 of three is killed: reads while it is down lack its users;
    for redis-cluster, master 1 of three: the users on its shards are gone.)"""
    result, left = _run(strategy, ("kill",))
    assert not left
    check = result.check
    assert check.lost > 0
    if strategy == "redis-cluster":
        # Its reads fail while a master is down (no partial sums): the loss shows in the
        # final count, and clients saw failed operations.
        assert sum(row["fail"] + row["info"] for row in result.per_client()) > 0
        assert check.final is not None and check.final.below > 0
    else:
        assert any(r.below > 0 for r in check.reads)


def test_a_paused_aggregate_node_makes_reads_partial_until_it_resumes() -> None:
    """aggregate's node 0 lives in client 0's process: paused with it, the other clients'
    reads leave its users out (below their bounds); the final count, read after it
    resumed, is exact."""
    result, left = _run("aggregate", ("pause",))
    assert not left
    check = result.check
    assert any(r.below > 0 for r in check.reads)
    in_pause = [r for r in check.reads if r.below > 0]
    window = result.windows[0]
    assert all(r.op.end >= window.start for r in in_pause)  # none before the pause began
    assert check.final is not None and check.final.valid
    assert result.target["service"] == "hosted"
    assert verdict(result, "eventual")[0]  # judged on the final count
    assert not verdict(result, "strong")[0]  # a strong claim would fail on the reads


def test_an_fsynced_aof_keeps_every_acknowledged_login_across_a_kill() -> None:
    result, left = _run("redis-set", ("kill",), persist=True)
    assert not left
    assert result.check.valid, verdict(result)[1]
    report = to_dict(result, "strong")
    assert report["real_faults"]["server"]["persistence"].startswith("aof")
    assert [w["fault"] for w in report["real_faults"]["windows"]] == ["kill"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"strategy": "pncounter"}, "simulator"),
        ({"strategy": "nope"}, "unknown strategy"),
        ({"strategy": "central", "persist": True}, "memory only"),
        ({"strategy": "redis-incr", "faults": ("explode",)}, "unknown real fault"),
        ({"strategy": "redis-incr", "clients": 0}, "--clients"),
        ({"strategy": "aggregate", "faults": ("pause", "kill")}, "not kill"),
        ({"strategy": "aggregate", "persist": True}, "memory only"),
    ],
)
def test_bad_input_is_one_line(kw: dict[str, object], message: str) -> None:
    with pytest.raises(RealFaultError) as info:
        run_real_faults(RealFaultConfig(**kw))  # type: ignore[arg-type]
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_eventual_strategy_is_judged_on_its_final_count() -> None:
    result, left = _run("eventual", ("pause",))
    assert not left
    passed, summary = verdict(result, "eventual")
    final = result.check.final
    assert final is not None
    assert passed == final.valid
    assert "claims eventual consistency" in summary or not passed


# ------------------------------------------------------------------ the command


def _chaos(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env["COLUMNS"] = "100"
    return subprocess.run(
        [sys.executable, "-m", "countbench.bench.cli", "chaos", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_chaos_on_a_service_strategy_runs_real_faults(tmp_path: Path) -> None:
    out = tmp_path / "incr.json"
    result = _chaos(
        tmp_path, "--strategy", "redis-incr", "--faults", "kill", "--duration", "2",
        "--clients", "2", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # acknowledged INCRs lost in the restart
    assert "FAIL:" in result.stdout and "Traceback" not in result.stderr
    data = json.loads(out.read_text())["real_faults"]
    assert data["strategy"] == "redis-incr" and data["verdict"]["passed"] is False
    assert [w["fault"] for w in data["windows"]] == ["kill"]
    assert len(data["clients"]) == 2
    assert all(row["ops"] == row["ok"] + row["fail"] + row["info"] for row in data["clients"])
    assert data["check"]["most_below"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "central", "--faults", "explode"], "unknown real fault"),
        (["--strategy", "central", "--persist"], "memory only"),
        (["--strategy", "central", "--operations", "5"], "for the simulator"),
        (["--strategy", "redis-set", "--clients", "0"], "--clients"),
    ],
)
def test_chaos_bad_real_fault_input_is_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = _chaos(tmp_path, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_compare_real_faults_fills_the_consistency_column(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env["COLUMNS"] = "160"
    result = subprocess.run(
        [sys.executable, "-m", "countbench.bench.cli", "compare", "central,local", "--smoke",
         "--quiet", "--real-faults", "--wide", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # The kill loses central's acknowledged sessions: a contradiction of its specification,
    # named on stderr, and exit 1 (after the table and the report).
    assert result.returncode == 1, result.stderr
    assert "central contradicts its specification: real faults:" in result.stderr
    assert "local contradicts" not in result.stderr
    assert "real faults (pause, kill; seed 1)" in result.stdout
    by_name = {r["strategy"]["name"]: r for r in json.loads(out.read_text())["results"]}
    assert by_name["local"]["real_faults"] is None  # nothing on a server to fault
    central = by_name["central"]["real_faults"]
    assert central["config"]["faults"] == ["pause", "kill"]
    assert central["check"]["reads"] > 0
    assert central["verdict"]["passed"] is False  # the kill loses every session
    assert central["check"]["most_below"] > 0
