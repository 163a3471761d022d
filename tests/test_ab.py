"""The A/B gate: paired statistics (reports/paired.py), ``countbench ab`` on real worker
processes (a slowed B must fail it, an identical B must not), and ``gate-check``."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest
from test_cli import cli  # the one way tests run the command line

from countbench.bench.ab import balanced_orders
from countbench.reports.paired import (
    ALPHA,
    EXACT_ROUNDS,
    MIN_ROUNDS,
    PERMUTATIONS,
    paired_change,
    sign_flip_p,
)

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

SMALL = ["--operations", "300", "--users", "60", "--quiet"]


# --- the statistics -------------------------------------------------------------------------


def test_sign_flip_p_is_exact_on_small_samples() -> None:
    assert sign_flip_p([0.1] * 6) == 2 / 2**6  # all one way: the two extreme patterns
    assert sign_flip_p([0.1] * 5) == 2 / 2**5
    assert sign_flip_p([]) == 1.0
    differences = [0.3, -0.1, 0.2, 0.05, -0.02, 0.4]
    # By enumeration, written out here independently of the module.
    observed = abs(sum(differences))
    count = sum(
        1
        for signs in itertools.product((1, -1), repeat=len(differences))
        if abs(sum(s * d for s, d in zip(signs, differences, strict=True))) >= observed - 1e-12
    )
    assert math.isclose(sign_flip_p(differences), count / 2 ** len(differences))


def test_sign_flip_p_samples_beyond_the_exact_limit() -> None:
    rng = random.Random(3)
    noise = [rng.gauss(0, 0.05) for _ in range(EXACT_ROUNDS + 4)]
    assert sign_flip_p(noise) > 0.05
    assert sign_flip_p([x - 0.1 for x in noise]) < 0.001


def test_sampled_p_is_never_zero() -> None:
    assert sign_flip_p([0.1] * (EXACT_ROUNDS + 4)) == 1 / (PERMUTATIONS + 1)


@pytest.mark.parametrize("rounds", [6, 7, 10])
def test_each_side_goes_first_in_half_the_rounds(rounds: int) -> None:
    for seed in range(20):
        orders = balanced_orders(rounds, random.Random(seed))
        assert len(orders) == rounds and set(orders) <= {"AB", "BA"}
        assert abs(orders.count("AB") - orders.count("BA")) == rounds % 2
    assert len({tuple(balanced_orders(10, random.Random(s))) for s in range(20)}) > 1


def test_a_consistent_slowdown_is_a_regression_and_noise_is_not() -> None:
    a = [1e6, 1.1e6, 0.9e6, 1.05e6, 0.95e6, 1e6, 1.02e6, 0.98e6, 1e6, 1.01e6]
    slower = [x * 0.9 for x in a]
    change = paired_change("writes", a, slower, 0.05)
    assert math.isclose(change.change_pct, -10.0)
    assert change.p_value == 2 / 2**10 and change.regression
    assert change.ci95_pct is not None and math.isclose(change.ci95_pct[0], -10.0)
    # The same slowdown under a 15% threshold, or a speed-up, is no regression.
    assert not paired_change("writes", a, slower, 0.15).regression
    assert not paired_change("writes", slower, a, 0.05).regression
    # Rounds drifting together (the machine) with no real change between A and B.
    rng = random.Random(1)
    drift = [rng.uniform(0.5, 1.5) for _ in range(10)]
    a2 = [1e6 * d * rng.uniform(0.98, 1.02) for d in drift]
    b2 = [1e6 * d * rng.uniform(0.98, 1.02) for d in drift]
    assert not paired_change("writes", a2, b2, 0.05).regression


def test_too_few_rounds_are_not_judged() -> None:
    a = [1e6] * (MIN_ROUNDS - 1)
    change = paired_change("reads", a, [x / 2 for x in a], 0.05)
    assert change.p_value is None and not change.regression
    assert change.note is not None and "not enough independent samples to judge" in change.note
    assert 2 / 2**MIN_ROUNDS < ALPHA <= 2 / 2 ** (MIN_ROUNDS - 1)
    with pytest.raises(ValueError):
        paired_change("reads", [1.0], [1.0, 2.0], 0.05)


# --- the commands, on real worker processes ---------------------------------------------------


def test_ab_fails_a_slowed_b_and_passes_an_identical_one(tmp_path: Path) -> None:
    common = ["ab", "local", "--rounds", "6", "--streams", "writes", "--values", "2", *SMALL]
    slowed = cli(tmp_path, *common, "--slowdown-b", "100%", "--json", "ab.json", timeout=240)
    assert slowed.returncode == 1, slowed.stderr
    assert "REGRESSION" in slowed.stdout and "FAILED: B is slower: writes -" in slowed.stdout
    data = json.loads((tmp_path / "ab.json").read_text())
    assert data["regression"] and data["rounds"] == 6 and data["b"]["slowdown"] == 1.0
    (writes,) = data["streams"]
    assert len(writes["ratios"]) == 6 and all(r < 0.8 for r in writes["ratios"])
    assert sorted(data["orders"]) == ["AB"] * 3 + ["BA"] * 3
    assert data["a"]["countbench"] and data["a"]["python_version"]

    same = cli(tmp_path, *common, "--fail-above", "60%", timeout=240)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "ok: B is not significantly slower than A by more than 60.0%" in same.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ab", "local", "--rounds", "0"], "--rounds 0: give 6 to 1000"),
        (["ab", "local", "--rounds", "5"], "fewer than 6 rounds cannot reach p < 0.05"),
        (["ab", "local", "--python-a", "/bin/true"], "did not say which countbench it runs"),
        (["ab", "session", "--mode", "process"], "cannot run in process mode"),
        (["ab", "local", "--streams", "writes,nope"], "--streams 'writes,nope': choose among"),
        (["ab", "local", "--python-b", "/nonexistent/python"], "/nonexistent/python: no such"),
        (["ab", "local", "--python-b", "/bin/sh"], "not a Python with countbench installed"),
        (["ab", "local", "nope"], "unknown strategy 'nope'"),
        (["ab", "local,pncounter"], "give one strategy per side"),
        (["ab", "all"], "give one strategy per side"),
        (["ab", "local", "--redis-url", "http://x"], "--redis-url must start with redis://"),
        (["ab", "local", "--affinity", "0-"], "give CPUs like 0, 0-1 or 0,2"),
        (["gate-check", "--strategy", "local,pncounter"], "give one strategy per side"),
        (["gate-check", "--gates", "both"], "--gates 'both': give ab, stored"),
        (["ab", "local", "--slowdown-b", "fast"], "--slowdown-b 'fast'"),
        (["ab", "local", "--fail-above", "200%"], "--fail-above '200%'"),
        (["gate-check", "--stream", "both"], "--stream 'both'"),
        (["gate-check", "--slowdowns", "0%"], "--slowdowns '0%'"),
        (["gate-check", "--slowdowns", "10%,abc"], "--slowdowns 'abc'"),
        (["gate-check", "--ab-fail-above", "1.5"], "--ab-fail-above '1.5'"),
        (["gate-check", "--strategy", "nope"], "unknown strategy 'nope'"),
    ],
)
def test_bad_ab_input_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    done = cli(tmp_path, *args, "--quiet", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_gate_check_reports_what_each_gate_saw(tmp_path: Path) -> None:
    done = cli(
        tmp_path,
        "gate-check",
        "--pairs",
        "1",
        "--slowed-pairs",
        "1",
        "--slowdowns",
        "200%",
        "--rounds",
        "6",
        *SMALL,
        "--json",
        "gate.json",
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "gate.json").read_text())
    assert data["ab"]["false_alarms"][1] == 1 and data["stored"]["false_alarms"][1] == 1
    # A tripled loop time is seen by both gates.
    assert data["ab"]["detected"]["2"] == [1, 1]
    assert data["stored"]["detected"]["2"] == [1, 1]
    assert data["stored"]["changes_pct"]["2"][0] < -50
    assert data["rerun_covered"][1] == 1
    assert "false alarms" in done.stdout and "detects 200%" in done.stdout
    stored = [p for p in data["stored"]["pairs"] if p["slowdown"] == 2]
    assert len(stored) == 1 and len(stored[0]["new_processes"]) == 9  # the CI preset
    assert stored[0]["failed"] and stored[0]["new"] < stored[0]["base"] / 2
