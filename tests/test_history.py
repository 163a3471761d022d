"""``chaos --history``: the simulator's operation history, and an independent re-check.

``tests/history_check.py`` was written from ``docs/history.md`` and the JSON Schema alone,
without reading countbench's code. These tests hold countbench to it: on histories of every
simulated built-in and of broken strategies, under faults that refuse, lose and delay
operations, it must judge every read and every final count exactly as countbench did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from countbench.bench.sim import run_scenario, standard_scenario
from countbench.bench.sim.result import SimResult

sys.path.insert(0, str(Path(__file__).parent))
from test_broken_strategies import DoubleCountsStrategy, DropsLogoutsStrategy
from test_sim_requests import LyingSession

import history_check

#: Every built-in the simulator runs: replicas, and the request designs (aggregate, session).
SIMULATED = [
    "gcounter", "pncounter", "pncounter-op", "orset", "vclock", "compact",
    "eventual", "aggregate", "session",
]  # fmt: skip
FAULTS = ["partition,duplicate,reorder", "crash,isolate", "loss,crash-persist,latency"]


def _run(strategy: Any, faults: str, seed: int = 2, **fields: Any) -> SimResult:
    settings = {"seed": seed, "nodes": 3, "users": 200, "operations": 1500, **fields}
    return run_scenario(strategy, standard_scenario(faults, **settings), history=True)


def _lines(result: SimResult) -> list[dict[str, Any]]:
    """The history as an outside checker reads it: through JSON."""
    assert result.history is not None
    return [json.loads(json.dumps(line)) for line in result.history.lines]


def _value_verdict(result: SimResult) -> bool:
    """countbench's verdict on values alone: what a history can show (not the samples of a
    strong claim, not the convergence budget)."""
    v, final = result.verdict, result.final
    if not all(final.in_spec) or not final.agree:
        return False
    assert result.history is not None
    return not (v.claim == "strong" and any(result.history.judged.values()))


def _agree(result: SimResult) -> history_check.Checked:
    checked = history_check.check(_lines(result))
    assert result.history is not None
    judged = result.history.judged
    differing = {
        i for i in judged.keys() | checked.reads.keys() if judged.get(i) != checked.reads.get(i)
    }
    assert not differing, f"reads judged differently: {sorted(differing)[:10]}"
    assert checked.final_bounds == tuple(result.final.allowed)
    assert checked.finals == {node: not ok for node, ok in enumerate(result.final.in_spec)}
    assert checked.passed == _value_verdict(result), (checked, result.verdict)
    return checked


@pytest.mark.slow
@pytest.mark.parametrize("faults", FAULTS)
@pytest.mark.parametrize("strategy", SIMULATED)
def test_the_independent_checker_agrees_read_for_read(strategy: str, faults: str) -> None:
    result = _run(strategy, faults)
    checked = _agree(result)
    assert len(checked.reads) > 100  # enough reads judged to mean something


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("strategy", ["session", "aggregate"])
def test_requests_that_overlap_time_out_and_are_sent_again(strategy: str, seed: int) -> None:
    """Short sessions and 3 s of reordering against a 2 s request timeout: a user's login
    and logout overlap, some get no answer, and the clients send them again at the end."""
    result = _run(
        strategy, "duplicate,reorder,partition", seed=seed, nodes=5, users=300,
        operations=2000, session_length=60.0,
    )  # fmt: skip
    assert result.passed, result.verdict
    if strategy == "session":
        assert result.operations.retries > 0
    _agree(result)


@pytest.mark.slow
def test_lost_changes_are_in_the_history_and_widen_the_allowed_values() -> None:
    """A crash without state right after a burst of changes: some are lost before any
    other node heard of them; the history names them and both checks allow for them."""
    for seed in range(1, 30):
        result = _run("pncounter", "crash", seed=seed, operations=3000)
        if result.final.lost_changes:
            break
    else:  # pragma: no cover - the scenario is chosen to lose changes
        pytest.fail("no seed lost a change")
    lines = _lines(result)
    lost = [line for line in lines if line["type"] == "lost"]
    assert len(lost) == result.final.lost_changes
    low, high = result.final.allowed
    assert high > low or result.final.lost_changes == 0
    _agree(result)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("broken", "faults"),
    [
        (DropsLogoutsStrategy, "partition"),
        (DoubleCountsStrategy, "none"),
        (LyingSession, "none"),
        (LyingSession, "partition"),
    ],
)
def test_the_checker_fails_what_countbench_fails(broken: Any, faults: str) -> None:
    # short sessions: enough logouts for one in a hundred to be dropped on every node
    result = _run(broken, faults, operations=3000, session_length=60.0)
    assert result.verdict.bug
    checked = _agree(result)
    assert not checked.passed


@pytest.mark.slow
def test_every_line_validates_against_the_shipped_schema() -> None:
    schema_text = resources.files("countbench.reports").joinpath("history.schema.json").read_text()
    validator = jsonschema.Draft202012Validator(json.loads(schema_text))
    for strategy in ("pncounter", "session"):
        lines = _lines(_run(strategy, "partition,crash"))
        assert lines[0]["type"] == "header" and lines[-1]["type"] == "end"
        for line in lines:
            validator.validate(line)
        invoked = [line["index"] for line in lines if line["type"] == "invoke"]
        completed = [line["index"] for line in lines if line["type"] == "complete"]
        assert invoked == list(range(len(invoked))) and sorted(completed) == invoked


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "countbench.bench.cli", "chaos", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_chaos_writes_the_history_and_the_checker_script_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    args = ["--strategy", "pncounter", "--faults", "partition", "--operations", "800"]
    done = _cli(tmp_path, *args, "--history", str(path))
    assert done.returncode == 0, done.stderr
    assert f"history written to {path}" in done.stdout
    script = Path(__file__).parent / "history_check.py"
    checked = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # An existing file is kept without --force: one line, exit 2, the file unchanged.
    before = path.read_bytes()
    again = _cli(tmp_path, *args, "--history", str(path))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before
    same = _cli(tmp_path, *args, "--history", str(path), "--json", str(path), "--force")
    assert same.returncode == 2 and "same file" in same.stderr


@pytest.mark.slow
def test_a_real_fault_run_writes_a_history_the_checker_agrees_with(tmp_path: Path) -> None:
    """Real faults (pause, kill) on a real Redis: the counter check, re-done from the
    history by the checker, gives countbench's verdict and its reads outside."""
    path = tmp_path / "real.jsonl"
    args = ["--strategy", "redis-incr", "--clients", "2", "--duration", "2"]
    done = _cli(tmp_path, *args, "--history", str(path))
    assert done.returncode in (0, 1), done.stderr
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["source"] == "real" and lines[-1]["type"] == "end"
    end = lines[-1]["verdict"]
    checked = history_check.check(lines)
    assert checked.passed == end["passed"] == (done.returncode == 0)
    assert sum(checked.reads.values()) == end["reads_outside"]
    assert list(checked.final_bounds) == end["allowed"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "mode", "timeout"),
    [
        ("pncounter", "process", "1800"),
        ("session", "asyncio", "1800"),
        ("gcounter", "thread", "1800"),
        ("local", "thread", "1800"),
        ("session", "thread", "60"),  # shorter than the pass: not judged
    ],
)
def test_run_writes_its_verification_pass_and_the_checker_agrees(
    tmp_path: Path, strategy: str, mode: str, timeout: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    path = tmp_path / "pass.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "countbench.bench.cli", "run", "--strategy", strategy,
         "--mode", mode, "--smoke", "--quiet", "--operations", "400",
         "--session-timeout", timeout, "--history", str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    head, end = lines[0], lines[-1]
    assert head["source"] == "run" and end["type"] == "end" and end["verdict"]["passed"]
    invokes = [line for line in lines if line["type"] == "invoke"]
    assert len(invokes) >= 800 and all("now" in line for line in invokes)  # 2 workers x 400
    checked = history_check.check(lines)
    assert checked.passed
    if timeout == "60":
        assert end["verdict"]["judged"] is False and not checked.finals
        return
    assert end["verdict"]["judged"] and list(checked.final_bounds) == end["verdict"]["allowed"]
    # a count one off the specification: the checker sees it
    finals = [line for line in lines if line["type"] == "final"]
    finals[0]["value"] += 1
    assert not history_check.check(lines).passed
