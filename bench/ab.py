"""Two versions timed in one run, in randomized interleaved rounds (``countbench ab``).

A *side* is a strategy and the Python that runs its pyperf workers: this interpreter, or
another environment's (a base checkout installed in its own venv), since pyperf starts
every worker as a process of its own. Both sides use the servers this run starts (or the
user's Redis) and the same workload.

Each round times every stream once per side, one worker process apiece (countbench's own
loop calibration, ``values`` timed values), A and B back to back; per stream, half the
rounds run A first and half B first, in a seeded random order (:func:`balanced_orders`).
The statistics are in :mod:`countbench.reports.paired`.

``Side.slowdown`` makes the harness burn that share of each timed loop on top (see
``TimedStream``): how ``gate-check`` learns what a gate detects, never a real figure.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..reports.paired import PairedChange, paired_change
from ..strategies.base import Mode, Strategy
from ..strategies.errors import UsageError
from ..strategies.registry import discover, mode_problem, resolve
from .drivers import StreamName
from .plan import Plan
from .presets import Preset
from .services import RunServices, needed, provide
from .timing import Controls, time_plan
from .workload import WorkloadSpec

#: Timed values per worker process in a round.
DEFAULT_VALUES = 5
#: One worker process per side, round and stream, countbench's loop calibration.
ROUND_CONTROLS = Controls(Preset.QUICK, values=DEFAULT_VALUES)


class ABUsageError(UsageError):
    """A side that cannot run (a Python without countbench, an unknown strategy)."""


@dataclass(frozen=True)
class Side:
    strategy: str
    python: str | None = None  # None: this interpreter
    slowdown: float = 0.0

    def label(self) -> str:
        where = f" ({self.python})" if self.python else ""
        slowed = f" slowed {self.slowdown:.0%}" if self.slowdown else ""
        return f"{self.strategy}{where}{slowed}"


@dataclass
class ABRun:
    """Every round's figure of both sides, and the order they ran in."""

    a: Side
    b: Side
    streams: tuple[StreamName, ...]
    seed: int
    a_rates: dict[str, list[float]] = field(default_factory=dict)
    b_rates: dict[str, list[float]] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)  # "AB" or "BA", by round, then stream
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return min((len(v) for v in self.a_rates.values()), default=0)

    def judge(self, fail_above: float) -> list[PairedChange]:
        return [
            paired_change(s, self.a_rates[s], self.b_rates[s], fail_above) for s in self.streams
        ]

    def to_dict(self, fail_above: float, spec: WorkloadSpec, mode: Mode) -> dict[str, Any]:
        changes = self.judge(fail_above)
        return {
            "kind": "countbench-ab",
            "version": 1,
            "a": {"label": self.a.label(), **vars(self.a), **self.versions.get("a", {})},
            "b": {"label": self.b.label(), **vars(self.b), **self.versions.get("b", {})},
            "mode": str(mode),
            "workload": spec.to_dict(),
            "rounds": self.rounds,
            "order_seed": self.seed,
            "orders": self.orders,
            "fail_above": fail_above,
            "services": self.services,
            "streams": [c.to_dict() for c in changes],
            "regression": any(c.regression for c in changes),
        }


_VERSION_PROBE = (
    "import json, platform\n"
    "import countbench.bench.ab\n"  # a countbench whose workers time one stream of a plan
    "from countbench.bench.environment import git_facts, tool_version\n"
    "print(json.dumps({'countbench': tool_version(), 'git': git_facts(),"
    " 'python_version': platform.python_version()}))\n"
)


def side_versions(python: str | None) -> dict[str, Any]:
    """What a side runs: its countbench version and commit, and its Python's version.
    :class:`ABUsageError` when ``python`` cannot import countbench."""
    import sys

    executable = python or sys.executable
    if python is not None and not Path(python).is_file():
        raise ABUsageError(f"{python}: no such Python")
    try:
        done = subprocess.run(
            [executable, "-c", _VERSION_PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        raise ABUsageError(f"{executable}: cannot run it ({exc.strerror})") from None
    except subprocess.TimeoutExpired:
        raise ABUsageError(f"{executable}: did not answer within 60 s") from None
    if done.returncode != 0:
        raise ABUsageError(
            f"{executable}: not a Python with countbench installed (one with `countbench ab`)"
        )
    try:
        facts = json.loads(done.stdout.strip().splitlines()[-1])
        if not isinstance(facts, dict):
            raise ValueError
    except (IndexError, ValueError):
        raise ABUsageError(f"{executable}: did not say which countbench it runs") from None
    facts["python"] = executable
    return facts


def strategy_class(name: str, mode: Mode) -> type[Strategy]:
    """The strategy ``name``, when it can run in ``mode``: :class:`UnknownStrategy`
    (exit 2 in the CLI) or :class:`ABUsageError` otherwise."""
    chosen = resolve(name, discover())
    if len(chosen) != 1 or name.strip() == "all":
        raise ABUsageError(f"{name!r}: give one strategy per side (or two, for ab A B)")
    cls = chosen[0]
    problem = mode_problem(cls, mode)
    if problem:
        raise ABUsageError(problem)
    return cls


def balanced_orders(rounds: int, rng: random.Random) -> list[str]:
    """Which side goes first in each round: as many "AB" as "BA" (one more of a random
    one when ``rounds`` is odd), shuffled. A side that gains from going second (a warmer
    cache, a server with more keys) then gains as often as the other."""
    orders = ["AB", "BA"] * (rounds // 2)
    if rounds % 2:
        orders.append(rng.choice(("AB", "BA")))
    rng.shuffle(orders)
    return orders


def run_ab(
    a: Side,
    b: Side,
    mode: Mode,
    spec: WorkloadSpec,
    rounds: int,
    streams: tuple[StreamName, ...],
    seed: int,
    controls: Controls = ROUND_CONTROLS,
    progress: Callable[[str], None] = lambda _: None,
    redis_url: str | None = None,
    served: tuple[str, RunServices] | None = None,
) -> ABRun:
    """Time ``a`` and ``b`` in ``rounds`` randomized interleaved rounds, on the servers
    ``served`` (a run id and its services) or on servers started for this run."""
    from .servers.redis_server import new_run_id

    classes = [strategy_class(a.strategy, mode), strategy_class(b.strategy, mode)]
    run = ABRun(a, b, streams, seed)
    run.versions = {"a": side_versions(a.python), "b": side_versions(b.python)}
    if served is not None:
        _rounds(run, mode, spec, rounds, controls, progress, *served)
        return run
    run_id = new_run_id()
    with provide(needed(classes), run_id, spec.session_timeout, spec.nodes, redis_url) as now:
        _rounds(run, mode, spec, rounds, controls, progress, run_id, now)
    return run


def _rounds(
    run: ABRun,
    mode: Mode,
    spec: WorkloadSpec,
    rounds: int,
    controls: Controls,
    progress: Callable[[str], None],
    run_id: str,
    served: RunServices,
) -> None:
    rng = random.Random(run.seed)
    orders = {stream: balanced_orders(rounds, rng) for stream in run.streams}
    one_process = replace(controls, processes=1)
    run.services = served.facts
    for index in range(rounds):
        for stream in run.streams:
            order = orders[stream][index]
            run.orders.append(order)
            for which in order.lower():
                side = run.a if which == "a" else run.b
                progress(f"round {index + 1}/{rounds}: {stream} of {which.upper()}")
                plan = Plan(
                    (side.strategy,),
                    mode,
                    spec,
                    run_id,
                    served.endpoints,
                    streams=(stream,),
                    slowdown=side.slowdown,
                )
                timings = time_plan(plan, replace(one_process, python=side.python))
                rates = run.a_rates if which == "a" else run.b_rates
                rates.setdefault(stream, []).append(next(iter(timings.values())).ops_per_sec)
