"""A result's two notions of consistency, read the same way by every format and by the CLI.

* **correct**: the counts lie in the values the strategy's own specification allows, in the
  fault-free verification pass, on the simulator's standard scenario, and under real faults
  (when run). A contradiction is a bug, and makes ``run``/``compare`` exit 1. A simulated
  failure in a scenario that breaks an assumption the specification states (exactly-once
  delivery) is *expected*: shown, not a bug.
* **error against the users online**: fitness for the job. A PN-counter keeps counting
  users who vanished, a G-counter every logout; shown, judged only against a bound the
  user gives (``--max-error``).

Reports written before specifications existed have no ``correct`` fields: their status is
unknown (``?``), never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PASS, FAIL, EXPECTED, UNKNOWN = "✓", "✗", "✗ expected", "?"


def verification_status(result: Mapping[str, Any]) -> str:
    correct = result["verification"].get("correct")
    return UNKNOWN if correct is None else PASS if correct else FAIL


def simulated_status(result: Mapping[str, Any]) -> str | None:
    """None when the strategy was not simulated."""
    sim = result.get("simulation")
    if not sim:
        return None
    verdict = sim["verdict"]
    if verdict["passed"]:
        return PASS
    if "specification" not in verdict:
        return UNKNOWN
    return EXPECTED if verdict.get("expected") else FAIL


def real_fault_status(result: Mapping[str, Any]) -> str | None:
    real = result.get("real_faults")
    if not real:
        return None
    return PASS if real["verdict"]["passed"] else FAIL


def spec_problems(result: Mapping[str, Any]) -> list[str]:
    """One line per contradiction of the strategy's specification (empty: none found)."""
    problems: list[str] = []
    check = result["verification"]
    if check.get("absurd"):
        problems.append(f"verification pass: absurd counts: {'; '.join(check['absurd'])}")
    elif check.get("correct") is False:
        problems.append(
            f"verification pass: counts {check['counts']} where {check['specification']} "
            f"allows {allowed_text(check['allowed'])}"
        )
    if simulated_status(result) == FAIL:
        sim = result["simulation"]
        problems.append(
            f"simulated ({sim['faults']}; seed {sim['seed']}): "
            + "; ".join(sim["verdict"]["reasons"])
        )
    if real_fault_status(result) == FAIL:
        problems.append(f"real faults: {result['real_faults']['verdict'].get('summary', '')}")
    return problems


def allowed_text(allowed: list[int]) -> str:
    """``498`` or ``[490, 498]``: the values a specification allows."""
    low, high = allowed
    return f"{low:,}" if low == high else f"[{low:,}, {high:,}]"


def online_error(result: Mapping[str, Any]) -> int:
    """The verification pass's worst signed error against the users online."""
    return int(max(result["verification"]["errors"], key=abs, default=0))


def parse_bound(text: str) -> tuple[float, bool]:
    """``--max-error``: ``"12"`` users or ``"1.5%"`` of the users online -> (value, is
    percent); ValueError with a one-line message otherwise."""
    raw = text.strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"--max-error takes a number of users or a percentage, got {text!r}"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"--max-error must be a finite number >= 0, got {text!r}")
    return value, percent


def over_bound(error: int, truth: int, bound: tuple[float, bool]) -> bool:
    value, percent = bound
    limit = value / 100 * truth if percent else value
    return abs(error) > limit


def describe_bound(bound: tuple[float, bool]) -> str:
    value, percent = bound
    return f"{value:g}%" if percent else f"{value:g} users"


#: An open-loop run (``--rate``) whose achieved rate is below this share of the offered one
#: fell short: its clients could not keep up, and its latency is that of a saturated system.
SHORT_OF_RATE = 0.95


def short_of_rate(open_loop: Mapping[str, Any]) -> bool:
    """Whether an open-loop result's achieved rate fell short of the rate its schedule
    asked for (the offered one in reports that predate ``scheduled_per_sec``); read from
    the figures, not from a stored flag."""
    asked = open_loop.get("scheduled_per_sec") or open_loop["offered_per_sec"]
    return bool(open_loop["achieved_per_sec"] < SHORT_OF_RATE * asked)
