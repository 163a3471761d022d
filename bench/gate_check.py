"""The gates measure themselves on the machine they run on (``countbench gate-check``).

For one strategy and one stream, on this machine, now:

* **A/B gate** (``countbench ab``): ``pairs`` A/B runs of identical code (how often the
  gate cries wolf), and ``slowed_pairs`` A/B runs per slowdown where the harness makes B
  that much slower (how often it sees it);
* **stored-baseline gate** (``countbench diff`` of two reports): the same with pairs of
  whole runs of the timing ``controls`` (the CI preset by default), the base run and
  then the new one, judged by the rule ``diff`` uses; and how often the base run's rerun
  interval held the new run's median, in an identical pair.

A slowdown of 10 % makes every timed loop take 10 % longer (see ``TimedStream``): ops/s
fall by 1 - 1/1.1, 9.1 %. All the runs are made in one seeded random order, so a drift of
the machine during the check spreads over every condition instead of biasing one.
The unit shuffled is a pair (an A/B run, or a base and a new run back to back).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..reports.diff import pair_diff
from ..reports.samples import estimate
from ..strategies.base import Mode
from .ab import Side, run_ab, strategy_class
from .drivers import StreamName
from .plan import Plan
from .presets import Preset
from .services import needed, provide
from .timing import Controls, Timing, time_plan
from .workload import WorkloadSpec

DEFAULT_SLOWDOWNS = (0.10, 0.20, 0.50)
CI_CONTROLS = Controls(Preset.CI)
GATES = ("ab", "stored")


@dataclass
class GateOutcome:
    """One gate's record: verdicts of identical pairs, and of slowed pairs by slowdown."""

    identical: list[bool] = field(default_factory=list)  # True: the gate failed the pair
    slowed: dict[float, list[bool]] = field(default_factory=dict)  # True: detected
    changes: dict[float, list[float]] = field(default_factory=dict)  # measured change, %
    #: Every pair as judged, in the order run: slowdown, change %, p, failed, and for a
    #: stored pair both medians, processes and the base's rerun interval (the coverage).
    pairs: list[dict[str, Any]] = field(default_factory=list)

    def false_alarms(self) -> tuple[int, int]:
        return sum(self.identical), len(self.identical)

    def detected(self, slowdown: float) -> tuple[int, int]:
        found = self.slowed.get(slowdown, [])
        return sum(found), len(found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "false_alarms": list(self.false_alarms()),
            "detected": {f"{s:g}": list(self.detected(s)) for s in sorted(self.slowed)},
            "changes_pct": {f"{s:g}": v for s, v in sorted(self.changes.items())},
            "pairs": self.pairs,
        }


@dataclass
class GateCheck:
    ab: GateOutcome = field(default_factory=GateOutcome)
    stored: GateOutcome = field(default_factory=GateOutcome)
    covered: list[bool] = field(default_factory=list)  # base's rerun interval held new
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ab": self.ab.to_dict(),
            "stored": self.stored.to_dict(),
            "rerun_covered": [sum(self.covered), len(self.covered)],
            "seconds": self.seconds,
        }


def check_gates(
    strategy: str,
    stream: StreamName,
    mode: Mode,
    spec: WorkloadSpec,
    pairs: int,
    slowed_pairs: int,
    slowdowns: tuple[float, ...],
    rounds: int,
    ab_fail_above: float,
    diff_fail_above: float,
    controls: Controls = CI_CONTROLS,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _: None,
    redis_url: str | None = None,
    gates: tuple[str, ...] = GATES,
) -> GateCheck:
    """Run every pair of the check (see the module's docstring) in one seeded order."""
    import time

    from .servers.redis_server import new_run_id

    start = time.perf_counter()
    jobs = [
        (gate, slowdown)
        for gate in gates
        for slowdown in (0.0, *slowdowns)
        for _ in range(slowed_pairs if slowdown else pairs)
    ]
    rng = random.Random(seed)
    rng.shuffle(jobs)
    result = GateCheck()
    classes = [strategy_class(strategy, mode)]
    run_id = new_run_id()
    with provide(needed(classes), run_id, spec.session_timeout, spec.nodes, redis_url) as served:
        for done, (kind, slowdown) in enumerate(jobs, 1):
            progress(f"[{done}/{len(jobs)}] {kind} pair, B slowed {slowdown:.0%}")
            if kind == "ab":
                ab = run_ab(
                    Side(strategy),
                    Side(strategy, slowdown=slowdown),
                    mode,
                    spec,
                    rounds,
                    (stream,),
                    seed=rng.randrange(2**31),
                    served=(run_id, served),
                )
                (change,) = ab.judge(ab_fail_above)
                outcome, failed, measured = result.ab, change.regression, change.change_pct
                detail: dict[str, Any] = {"ratios": list(change.ratios)}
                p_value = change.p_value
            else:
                # A stored-baseline pair: the base run, then the new one, back to back.
                base, new = (
                    _operation(
                        time_plan(
                            Plan((strategy,), mode, spec, run_id, served.endpoints, (stream,), x),
                            controls,
                        )
                    )
                    for x in (0.0, slowdown)
                )
                judged = pair_diff(strategy, stream, base, new, diff_fail_above)
                outcome, failed, measured = result.stored, judged.regression, judged.change_pct
                first, second = estimate(base), estimate(new)
                p_value = judged.p_value
                detail = {
                    "base": first.ops_per_sec,
                    "base_rerun": list(first.rerun) if first.rerun else None,
                    "new": second.ops_per_sec,
                    "base_processes": list(first.process_ops_per_sec),
                    "new_processes": list(second.process_ops_per_sec),
                }
                if not slowdown and first.rerun is not None:
                    low, high = first.rerun
                    result.covered.append(low <= second.ops_per_sec <= high)
            outcome.pairs.append(
                {"slowdown": slowdown, "change_pct": measured, "p": p_value, "failed": failed}
                | detail
            )
            if slowdown:
                outcome.slowed.setdefault(slowdown, []).append(failed)
                outcome.changes.setdefault(slowdown, []).append(measured)
            else:
                outcome.identical.append(failed)
    result.seconds = time.perf_counter() - start
    return result


def _operation(timings: dict[str, Timing]) -> dict[str, Any]:
    """A one-benchmark plan's timing as a report stores it (what :func:`pair_diff` reads)."""
    (timing,) = timings.values()
    return timing.to_dict()
