"""``countbench ab`` (two versions in one run, judged on paired ratios) and
``countbench gate-check`` (what the gates detect on this machine).

Registered in ``bench/cli.py``. Bad input raises :class:`~.options.UsageProblem` (one
line, exit 2); ``ab`` exits 1 when B is significantly slower than A by more than
``--fail-above``; ``gate-check`` exits 0 and prints its figures.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .options import (
    UsageProblem,
    controls_from,
    nodes_for,
    redis_url_option,
    spec_from,
    with_options,
)

STREAM_NAMES = ("writes", "reads", "mixed")
MAX_ROUNDS = 1000

RoundsOpt = Annotated[
    int, typer.Option("--rounds", help="Interleaved rounds: each times A and B once per stream.")
]
StreamsOpt = Annotated[
    str, typer.Option("--streams", help="Streams to time, e.g. writes or writes,reads,mixed.")
]
OrderSeedOpt = Annotated[
    int, typer.Option("--order-seed", help="Seed of the rounds' random A/B order.")
]
RoundValuesOpt = Annotated[
    int, typer.Option("--values", help="Timed values of each side's process in a round.")
]
JsonOutOpt = Annotated[Path | None, typer.Option("--json", help="Write the results here.")]


def _streams(text: str) -> tuple[Any, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in STREAM_NAMES]
    if not names or unknown:
        raise UsageProblem(
            f"--streams {text!r}: choose among {', '.join(STREAM_NAMES)}, separated by commas"
        )
    return names


def _slowdown(text: str | None, option: str = "--slowdown-b") -> float:
    """'10%' -> 0.1: how much longer each timed loop of B takes (up to 1000%)."""
    from ..reports.diff import parse_share

    return 0.0 if text is None else parse_share(text, option, 10.0)


def _controls(values: int, min_time: float | None, affinity: str | None) -> Any:
    """The quick preset's timing in one process per side and round (see bench/ab.py)."""
    flags = {"preset": None, "fast": False, "rigorous": False, "smoke": False}
    return controls_from({**flags, "values": values, "min_time": min_time, "affinity": affinity})


def _rounds(rounds: int) -> int:
    from ..reports.paired import MIN_ROUNDS

    if not MIN_ROUNDS <= rounds <= MAX_ROUNDS:
        raise UsageProblem(
            f"--rounds {rounds}: give {MIN_ROUNDS} to {MAX_ROUNDS} (fewer than {MIN_ROUNDS} "
            "rounds cannot reach p < 0.05)"
        )
    return rounds


def _progress(quiet: bool) -> Any:
    screen = Console(file=sys.stderr)

    def line(message: str) -> None:
        if not quiet:
            screen.print(message, markup=False, highlight=False)

    return line


@with_options(
    *("min_time", "affinity", "mode", "workers", "nodes", "users", "operations", "read_ratio"),
    *("sync_every", "seed", "pipeline", "workload", "redis_url", "json_path", "force", "quiet"),
)
def ab(
    strategy_a: Annotated[str, typer.Argument(help="A's strategy (the base).")],
    strategy_b: Annotated[
        str | None, typer.Argument(help="B's strategy (the change); default: A's.")
    ] = None,
    python_a: Annotated[
        str | None,
        typer.Option("--python-a", help="Run A's workers with this Python (another venv)."),
    ] = None,
    python_b: Annotated[
        str | None,
        typer.Option("--python-b", help="Run B's workers with this Python (another venv)."),
    ] = None,
    rounds: RoundsOpt = 16,
    streams: StreamsOpt = "writes,reads,mixed",
    fail_above: Annotated[
        str,
        typer.Option("--fail-above", help="Largest tolerated significant slowdown of B: '5%'."),
    ] = "5%",
    slowdown_b: Annotated[
        str | None,
        typer.Option(
            "--slowdown-b",
            help="Make each timed loop of B this much longer (burning CPU): checks the gate.",
        ),
    ] = None,
    order_seed: OrderSeedOpt = 1,
    values: RoundValuesOpt = 5,
    *,
    json_path: JsonOutOpt = None,
    **options: Any,
) -> None:
    """Time A and B in one run, interleaved in random order; fail if B is slower.

    Each round times every stream once per side, one worker process apiece, back to back.
    B's change is the geometric mean of the rounds' ratios B/A; it fails (exit 1) when B
    is slower by more than --fail-above with p < 0.05 (exact paired sign-flip test).
    """
    from ..reports.diff import parse_threshold
    from ..reports.json_report import check_output_path, write_json_atomic
    from .ab import ABUsageError, Side, run_ab

    mode, redis_url, force = options["mode"], options["redis_url"], options["force"]
    spec = nodes_for(spec_from(options["workload"], options), mode)
    _rounds(rounds)
    chosen = _streams(streams)
    threshold = parse_threshold(fail_above)
    controls = _controls(values, options["min_time"], options["affinity"])
    if json_path is not None:
        check_output_path(json_path, force)
    redis_url = redis_url_option(redis_url, [strategy_a, strategy_b or strategy_a])
    a = Side(strategy_a, python_a)
    b = Side(strategy_b or strategy_a, python_b, _slowdown(slowdown_b))
    try:
        result = run_ab(
            a,
            b,
            mode,
            spec,
            rounds,
            chosen,
            order_seed,
            controls,
            _progress(options["quiet"]),
            redis_url,
        )
    except ABUsageError as exc:
        raise UsageProblem(str(exc)) from None
    from ..reports.ab_table import ab_table

    changes = result.judge(threshold)
    out = Console()
    out.print(ab_table(changes, a.label(), b.label(), threshold))
    for key, side in (("a", "A"), ("b", "B")):
        facts = result.versions[key]
        git = facts.get("git") or {}
        commit = f" @ {git['commit'][:12]}" if git.get("commit") else ""
        out.print(
            f"{side}: countbench {facts['countbench']}{commit} · Python "
            f"{facts['python_version']} ({facts['python']})",
            markup=False,
            highlight=False,
        )
    for change in changes:
        if change.note:
            out.print(f"note: {change.stream}: {change.note}", markup=False, highlight=False)
    if json_path is not None:
        write_json_atomic(json_path, result.to_dict(threshold, spec, mode), force)
        out.print(f"written: {json_path}", markup=False, highlight=False)
    regressions = [c for c in changes if c.regression]
    if regressions:
        what = ", ".join(f"{c.stream} {c.change_pct:+.1f}%" for c in regressions)
        out.print(f"FAILED: B is slower: {what}", style="bold red", highlight=False)
        raise typer.Exit(1)
    out.print(
        f"ok: B is not significantly slower than A by more than {threshold:.1%}",
        markup=False,
        highlight=False,
    )


@with_options(
    *("mode", "workers", "users", "operations", "seed", "workload", "redis_url", "json_path"),
    *("force", "quiet"),
)
def gate_check(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="Strategy to time.")] = "local",
    stream: Annotated[str, typer.Option("--stream", help="writes, reads or mixed.")] = "writes",
    pairs: Annotated[
        int, typer.Option("--pairs", help="Identical pairs per gate (false alarms).")
    ] = 20,
    slowed_pairs: Annotated[
        int, typer.Option("--slowed-pairs", help="Slowed pairs per gate and slowdown.")
    ] = 10,
    slowdowns: Annotated[
        str, typer.Option("--slowdowns", help="Injected slowdowns, e.g. 10%,20%,50%.")
    ] = "10%,20%,50%",
    rounds: RoundsOpt = 16,
    ab_fail_above: Annotated[
        str, typer.Option("--ab-fail-above", help="The A/B gate's threshold (ab's default).")
    ] = "5%",
    diff_fail_above: Annotated[
        str, typer.Option("--diff-fail-above", help="The stored gate's (diff's default).")
    ] = "10%",
    gates: Annotated[
        str, typer.Option("--gates", help="ab, stored, or ab,stored (both gates).")
    ] = "ab,stored",
    order_seed: OrderSeedOpt = 1,
    *,
    json_path: JsonOutOpt = None,
    **options: Any,
) -> None:
    """Measure the gates on this machine: false alarms on identical code, detection of
    injected slowdowns, and how often a run's rerun interval holds the next run.

    The A/B gate is `countbench ab` (its defaults); the stored-baseline gate is `diff`
    between two runs of the CI preset made one after the other. Every run is made in one
    seeded random order.
    """
    from ..reports.diff import parse_threshold
    from ..reports.json_report import check_output_path, write_json_atomic
    from .ab import ABUsageError
    from .gate_check import check_gates

    mode, redis_url, force = options["mode"], options["redis_url"], options["force"]
    spec = nodes_for(spec_from(options["workload"], options), mode)
    if stream.strip() not in STREAM_NAMES:
        raise UsageProblem(f"--stream {stream!r}: give one of {', '.join(STREAM_NAMES)}")
    (chosen,) = _streams(stream)
    for name, value in (("--pairs", pairs), ("--slowed-pairs", slowed_pairs)):
        if not 1 <= value <= 1000:
            raise UsageProblem(f"{name} {value}: give 1 to 1000")
    _rounds(rounds)
    levels = tuple(dict.fromkeys(_slowdown(part, "--slowdowns") for part in slowdowns.split(",")))
    if not levels or 0.0 in levels:
        raise UsageProblem(f"--slowdowns {slowdowns!r}: give slowdowns above 0, e.g. 10%,20%")
    from .gate_check import GATES

    chosen_gates = tuple(dict.fromkeys(g.strip() for g in gates.split(",") if g.strip()))
    if not chosen_gates or not set(chosen_gates) <= set(GATES):
        raise UsageProblem(f"--gates {gates!r}: give ab, stored, or ab,stored")
    ab_threshold = parse_threshold(ab_fail_above, "--ab-fail-above")
    diff_threshold = parse_threshold(diff_fail_above, "--diff-fail-above")
    if json_path is not None:
        check_output_path(json_path, force)
    redis_url = redis_url_option(redis_url, [strategy])
    try:
        check = check_gates(
            strategy,
            chosen,
            mode,
            spec,
            pairs,
            slowed_pairs,
            levels,
            rounds,
            ab_threshold,
            diff_threshold,
            seed=order_seed,
            progress=_progress(options["quiet"]),
            redis_url=redis_url,
            gates=chosen_gates,
        )
    except ABUsageError as exc:
        raise UsageProblem(str(exc)) from None
    from ..reports.ab_table import gate_check_table

    data = {
        "kind": "countbench-gate-check",
        "strategy": strategy,
        "stream": chosen,
        "mode": str(mode),
        "workload": spec.to_dict(),
        "pairs": pairs,
        "slowed_pairs": slowed_pairs,
        "rounds": rounds,
        "ab_fail_above": ab_threshold,
        "diff_fail_above": diff_threshold,
        **check.to_dict(),
    }
    out = Console()
    out.print(gate_check_table(data, levels))
    covered, total = data["rerun_covered"]
    if total:
        out.print(
            f"a CI-preset run's rerun interval held the next identical run's median "
            f"{covered}/{total} times",
            markup=False,
            highlight=False,
        )
    out.print(f"{check.seconds:,.0f} s in all", markup=False, highlight=False)
    for gate in ("ab", "stored"):
        for level, changes in data[gate]["changes_pct"].items():
            mean = sum(changes) / len(changes)
            out.print(
                f"{gate}: slowed {float(level):.0%}: measured change {mean:+.1f}% on average "
                f"(ops/s fall {1 - 1 / (1 + float(level)):.1%} when loops take "
                f"{float(level):.0%} longer)",
                markup=False,
                highlight=False,
            )
    for line in target_lines(data):
        out.print(line, markup=False, highlight=False)
    if json_path is not None:
        write_json_atomic(json_path, data, force)
        out.print(f"written: {json_path}", markup=False, highlight=False)


#: Issue 15's targets: (what, gate, slowdown or None for false alarms, fewest or most).
TARGETS = (
    ("false alarms of diff (CI preset) at most 1 in 20", "stored", None, 1 / 20),
    ("false alarms of ab at most 1 in 20", "ab", None, 1 / 20),
    ("ab detects a 10% slowdown in at least 9 of 10", "ab", 0.1, 9 / 10),
    ("diff detects a 20% slowdown in at least 9 of 10", "stored", 0.2, 9 / 10),
)


def target_lines(data: dict[str, Any]) -> list[str]:
    """One line per target the check measured: 'met' or 'MISSED', with the figures."""
    lines = []
    for what, gate, slowdown, bound in TARGETS:
        if slowdown is None:
            hits, total = data[gate]["false_alarms"]
            if not total:
                continue
            met = hits / total <= bound
        else:
            hits, total = data[gate]["detected"].get(f"{slowdown:g}", [0, 0])
            if not total:
                continue
            met = hits / total >= bound
        lines.append(f"target: {what}: {hits}/{total}, {'met' if met else 'MISSED'}")
    covered, total = data["rerun_covered"]
    if total:
        met = covered / total >= 19 / 20
        lines.append(
            f"target: the interval holds a rerun in at least 19 of 20: {covered}/{total}, "
            f"{'met' if met else 'MISSED'}"
        )
    return lines
