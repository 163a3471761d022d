"""``countbench chaos``: run one replicated strategy through the fault simulator, or a
service-backed one against real servers under real faults (:mod:`.faults`).

Register with ``app.command("chaos")(chaos)``. Bad input raises
:class:`~countbench.bench.sim.SimUsageError` (one line; the CLI maps it to exit 2). A run
whose verdict fails prints the seed and exits 1 (after writing ``--json``, if asked).

``--faults`` names standard scenarios (comma-separated, or ``none``): see
:mod:`countbench.bench.sim.presets`. With ``--scenario FILE.toml`` the file defines the
run; ``--faults``, ``--seed``, ``--nodes``, ``--operations`` and ``--fanout`` override it
when they differ from their defaults (``partition``, 1, 5, 10000, not given);
``--fanout all`` sets the broadcast back to every other node.

For a strategy whose state lives in a server, ``--faults`` names real faults (``pause``,
``kill``; the default is both) and ``--clients``, ``--duration``, ``--timeout``,
``--retries`` and ``--persist`` shape the run; ``--nodes`` is the number of node servers
of ``aggregate-remote``/``eventual``; ``aggregate``'s nodes live in the client processes
(one per client) and take ``pause`` only. A strategy with a replica twin (``eventual``,
``aggregate``) runs on the simulator instead when ``--faults`` names simulated faults only;
``session`` (one in-process table, no server) always runs on the simulator.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..strategies.base import HostedStrategy, ServiceStrategy, Strategy, simulable
from ..strategies.errors import RunError
from .fault_names import REAL, SIMULATED

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .sim import Scenario, SimResult

DEFAULTS: dict[str, Any] = {
    "faults": "partition",
    "seed": 1,
    "nodes": 5,
    "operations": 10_000,
}


def _given(name: str, value: Any) -> bool:
    """Whether an option overrides the scenario file: it does when it differs from the
    option's default (so giving the default value explicitly keeps the file's value)."""
    return bool(value != DEFAULTS[name])


def parse_fanout(text: str | None) -> int | str | None:
    """``--fanout``: None when not given, ``"all"``, or a whole number of peers (checked
    with the scenario)."""
    from .sim.scenario import fanout_peers

    if text is None:
        return None
    peers = fanout_peers(text)
    return "all" if peers is None else peers


def build_scenario(
    faults: str,
    seed: int,
    nodes: int,
    operations: int,
    scenario_file: Path | None,
    fanout: int | str | None = None,
) -> Scenario:
    """The scenario the options describe (see the module docstring). ``fanout``: None
    when not given, ``"all"`` for every other node, else the number of peers."""
    from .sim import Scenario, fault_names, standard_scenario, with_standard_faults

    peers = None if fanout == "all" else fanout
    if scenario_file is None:
        return standard_scenario(
            faults, seed=seed, nodes=nodes, operations=operations, fanout=peers
        )
    base = Scenario.from_toml(scenario_file)
    given = (("seed", seed), ("nodes", nodes), ("operations", operations))
    changes: dict[str, Any] = {name: value for name, value in given if _given(name, value)}
    if fanout is not None:
        changes["fanout"] = peers
    if changes:
        base = base.with_overrides(**changes)
    if _given("faults", faults):
        base = with_standard_faults(base, fault_names(faults))
    return base


def chaos(
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="Replicated strategy to simulate.")
    ],
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help=f"Simulated faults, comma-separated: {', '.join(SIMULATED)}, none "
            f"(default partition); or real ones: {', '.join(REAL)} (their default).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the whole run.")] = 1,
    nodes: Annotated[int, typer.Option("--nodes", "-n", help="Replicas.")] = 5,
    operations: Annotated[
        int, typer.Option("--operations", help="Client operations (user events and reads).")
    ] = 10_000,
    scenario_file: Annotated[
        Path | None, typer.Option("--scenario", help="TOML scenario file (see docs).")
    ] = None,
    shaped_name: Annotated[
        str | None,
        typer.Option(
            "--shaped",
            help="Simulator: shape the clients' load as a shaped scenario does (storm, "
            "disconnect, churn, skew, daily, or a TOML file of shapes); the error in its "
            "windows is reported as error.shaped.",
        ),
    ] = None,
    fanout: Annotated[
        str | None,
        typer.Option(
            "--fanout",
            help="Simulator: peers each broadcast goes to, or 'all' (default: every node, "
            "or the scenario file's).",
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
    history_path: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Write every client operation and fault as JSON Lines "
            "(docs/history.md), for an outside checker.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing JSON file.")] = False,
    clients: Annotated[int, typer.Option("--clients", help="Real faults: client processes.")] = 4,
    duration: Annotated[
        float, typer.Option("--duration", help="Real faults: seconds the clients run.")
    ] = 6.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Real faults: request timeout, seconds.")
    ] = 0.4,
    retries: Annotated[
        int, typer.Option("--retries", help="Real faults: retries of a timed-out request.")
    ] = 3,
    persist: Annotated[
        bool, typer.Option("--persist", help="Real faults: Redis with an fsynced AOF.")
    ] = False,
    max_error: Annotated[
        str | None,
        typer.Option(
            "--max-error",
            help="Simulator: also fail when a final count is further than this from the "
            "users online (a number of users, or a percentage such as 1%).",
        ),
    ] = None,
) -> None:
    """Run a strategy under faults: error, staleness, convergence, cost, and a verdict.

    A replicated strategy runs on a seeded, deterministic simulator (same seed, same run).
    A strategy on a server runs against a real one that is paused and killed while client
    processes work, with a Jepsen-style check of every read (docs/real-faults.md).
    """
    from rich.console import Console
    from rich.text import Text

    from ..reports.json_report import ReportPathError, check_output_path, write_json_atomic
    from ..reports.verdicts import parse_bound
    from ..strategies.registry import discover
    from .faults.report import real_chaos
    from .faults.runner import RealFaultConfig
    from .faults.targets import real_faults_for
    from .sim import SimUsageError, resolve_strategy, run_scenario

    named = strategy.strip()
    cls_found = discover().get(named)
    if cls_found is not None and _real_faults_wanted(cls_found, faults):
        simulated = (scenario_file, shaped_name, fanout)
        if any(o is not None for o in simulated) or _given("operations", operations):
            raise SimUsageError(
                "--scenario, --shaped, --operations and --fanout are for the simulator"
            )
        if max_error is not None:
            raise SimUsageError("--max-error is for the simulator")
        config = RealFaultConfig(
            strategy=named,
            faults=real_faults_for(cls_found, REAL) if faults is None else _names(faults),
            seed=seed,
            clients=clients,
            duration=duration,
            timeout=timeout,
            retries=retries,
            persist=persist,
            nodes=nodes,
        )
        _distinct(json_path, history_path)
        spec = cls_found.specification.to_dict()
        claim = str(cls_found.consistency)
        if not real_chaos(config, claim, json_path, force, history_path, spec):
            raise typer.Exit(1)
        return
    cls = resolve_strategy(strategy)
    scenario = build_scenario(
        DEFAULTS["faults"] if faults is None else faults,
        seed,
        nodes,
        operations,
        scenario_file,
        parse_fanout(fanout),
    )
    if shaped_name is not None:
        from .shaped import load
        from .workload import SpecError

        try:
            scenario = scenario.with_overrides(shapes=load(shaped_name)[1])
        except SpecError as exc:
            raise SimUsageError(str(exc)) from None
    try:
        bound = None if max_error is None else parse_bound(max_error)
    except ValueError as exc:
        raise SimUsageError(str(exc)) from None
    _distinct(json_path, history_path)
    for path in (p for p in (json_path, history_path) if p is not None):
        try:
            check_output_path(path, force)
        except ReportPathError as exc:
            raise SimUsageError(str(exc)) from None
    try:
        result = run_scenario(cls, scenario, history=history_path is not None)
    except SimUsageError:  # the scenario, judged once its schedule is known
        raise
    except Exception as exc:  # the strategy's own code raised: a bug of it, not of the run
        raise StrategyCrashed(cls.name, exc) from None
    out = Console()
    out.print(result_table(result))
    _print_sparkline(out, result)
    _print_verdict(out, result)
    over = _over_bound(result, bound)
    if over:
        out.print(Text(over, style="bold red"))
    if json_path is not None:
        report = {
            "kind": "countbench-chaos",
            "schema_version": 1,
            "tool": {"name": "countbench", "command": "chaos"},
        }
        write_json_atomic(json_path, {**report, **result.to_dict()}, force)
        out.print(f"result written to {json_path}", markup=False, highlight=False)
    if history_path is not None and result.history is not None:
        result.history.write(history_path, force)
        out.print(f"history written to {history_path}", markup=False, highlight=False)
    if not result.passed or over:
        raise typer.Exit(1)


def _distinct(json_path: Path | None, history_path: Path | None) -> None:
    from .sim import SimUsageError

    if json_path is None or history_path is None:
        return
    if json_path.resolve() == history_path.resolve():
        raise SimUsageError("--json and --history name the same file")


class StrategyCrashed(RunError):
    """The strategy's code raised during a simulated run: one line, exit 1."""

    def __init__(self, name: str, exc: Exception) -> None:
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        text = str(exc).splitlines()[0] if str(exc) else ""
        super().__init__(
            f"strategy {name!r} raised {type(exc).__name__}{at}"
            + (f": {text[:200]}" if text else "")
        )


def _over_bound(result: SimResult, bound: tuple[float, bool] | None) -> str:
    """A line when a final count is further from the users online than ``--max-error``."""
    from ..reports.verdicts import describe_bound, over_bound

    if bound is None:
        return ""
    final = result.final
    worst = max(final.errors, key=abs, default=0)
    if not over_bound(worst, final.truth, bound):
        return ""
    return (
        f"FAIL --max-error {describe_bound(bound)}: a final count is {worst:+,} from the "
        f"{final.truth:,} users online"
    )


def _names(faults: str) -> tuple[str, ...]:
    return () if faults.strip() == "none" else tuple(f.strip() for f in faults.split(","))


def _real_faults_wanted(cls: type[Strategy], faults: str | None) -> bool:
    """A strategy on a server runs under real faults, unless it has a replica twin and
    ``--faults`` names simulated ones."""
    if not issubclass(cls, ServiceStrategy | HostedStrategy):
        return False
    if faults is None or not simulable(cls):
        return True
    names = _names(faults)
    return not names or not all(name in SIMULATED for name in names)


def _num(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.3g}{unit}"


def result_table(r: SimResult) -> Table:
    from rich.table import Table

    from .sim.allowed import describe_bounds

    sc = r.scenario
    table = Table(
        title=(
            f"chaos: {r.strategy}, seed {sc.seed}, {sc.nodes} nodes, {sc.operations} operations,"
            f" {len(sc.faults)} fault(s)"
            + ("" if sc.gossip is None else f", gossip to {sc.gossip} random peers")
        ),
        show_header=True,
    )
    table.add_column("metric", style="bold")
    table.add_column("value", overflow="fold")
    for fault in r.faults:
        window = fault["window"]
        when = f"{window[0]:g}-{window[1]:g}s" if window else "not applied (after the clients)"
        extra = f" sides {fault['sides']}" if "sides" in fault else ""
        table.add_row(f"fault {fault['type']}", f"{when}{extra}")
    v, f = r.verdict, r.final
    table.add_row("specification", f"{v.specification}: {v.meaning}")
    low, high = f.allowed
    table.add_row(
        "final vs specification",
        f"allowed {describe_bounds(low, high)} · values {f.values} · in spec "
        + ("all" if all(f.in_spec) else f"{sum(f.in_spec)} of {len(f.in_spec)}")
        + (f" · {f.lost_changes} change(s) lost in crashes" if f.lost_changes else ""),
    )
    for name, e in r.spec_error.items():
        table.add_row(
            f"outside spec {'samples' if name == 'all' else name}",
            f"max {e.max} · mean {e.mean:.3g} · n={e.samples}",
        )
    for name, e in r.error.items():
        table.add_row(
            f"|count-truth| {name}",
            f"max {e.max} · mean {e.mean:.3g} · p99 {e.p99} · bias {e.bias:+.3g} · n={e.samples}",
        )
    table.add_row(
        "reads vs truth",
        f"max {r.reads.max} · mean {r.reads.mean:.3g} · p99 {r.reads.p99} · "
        f"n={r.reads.samples} · rejected {r.reads_rejected}",
    )
    for name, st in r.value_staleness.items():
        table.add_row(
            f"value staleness {name}",
            f"p50 {_num(st.p50)} · p90 {_num(st.p90)} · p99 {_num(st.p99)} · max {_num(st.max)}"
            f" · never allowed {st.never}/{st.changes}",
        )
    st = r.staleness
    table.add_row(
        "delivery of changes",
        f"p50 {_num(st.p50)} · p90 {_num(st.p90)} · p99 {_num(st.p99)} · max {_num(st.max)}"
        f" · never {st.never}/{st.changes}",
    )
    for w in [*r.convergence, r.quiescence]:
        table.add_row(
            f"after {w.label}",
            f"drained {_num(w.drained_after)} · agree {_num(w.agree_after)}"
            f" · allowed {_num(w.allowed_after)} · = truth {_num(w.truth_after)}",
        )
    o = r.operations
    table.add_row(
        "final vs users online",
        f"truth {f.truth} · values {f.values} · errors {f.errors} · agree {f.agree}",
    )
    table.add_row(
        "accepted events",
        f"logins {o.accepted_logins} - logouts {o.accepted_logouts} = {f.accepted_balance}"
        f" · rejected {o.rejected} · vanished {f.vanished} ({f.vanished_unexpired} unexpired)",
    )
    c = r.cost
    table.add_row(
        "cost",
        f"{c.messages_per_operation:.3g} msgs/op · {c.bytes_per_operation:.3g} B/op · sync "
        f"metadata {c.metadata_bytes_mean:.0f} B mean, {c.metadata_bytes_max} B max",
    )
    table.add_row(
        "network",
        f"delivered {c.delivered} · duplicated {c.duplicated} · lost {c.lost} · cut {c.cut}"
        f" · to a down node {c.to_down_node}",
    )
    table.add_row("trace sha256", f"{r.trace_hash[:16]}… ({r.trace_lines} events)")
    return table


def _print_sparkline(out: Console, r: SimResult) -> None:
    from rich.text import Text

    from ..reports.sparkline import FAULT_MARK, colored, sparkline

    width = max(10, min(100, out.width - 2))
    values, faults = r.timeline.buckets(width)
    if not values:
        return
    bars, marks = sparkline(values, faults)
    step = (r.stop / len(values)) if values else 0.0
    out.print(
        f"max |count - truth| over the client phase (0..{max(values)}, one column ≈ "
        f"{step:.3g}s, {FAULT_MARK} = fault active)",
        markup=False,
        highlight=False,
    )
    out.print(colored(bars, faults))
    out.print(Text(marks, style="red"))


def _print_verdict(out: Console, r: SimResult) -> None:
    """Both notions: correct against the specification (the verdict), then the error
    against the users online (reported; judged only with --max-error)."""
    from rich.text import Text

    v, f = r.verdict, r.final
    worst = max(f.errors, key=abs, default=0)
    online = (
        f"error against the users online: final {worst:+,} of {f.truth:,} · max during "
        f"the run {r.error['all'].max:,}"
    )
    if v.passed:
        out.print(Text(f"PASS, correct against its specification ({v.rule})", style="bold green"))
    elif v.expected:
        out.print(
            Text(
                f"FAIL, expected (seed {v.seed}): the scenario breaks the specification's "
                f"assumption ({', '.join(v.outside_assumption)}): {'; '.join(v.reasons)}",
                style="bold yellow",
            )
        )
    else:
        out.print(Text(f"FAIL (seed {v.seed}): {'; '.join(v.reasons)}", style="bold red"))
        out.print(f"rule: {v.rule}", markup=False, highlight=False)
    out.print(online, markup=False, highlight=False)
