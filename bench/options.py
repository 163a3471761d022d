"""Options shared by the measuring commands (``run``, ``compare``, ``ab``, ``gate-check``),
and how their values become a workload and timing controls. Bad values raise
:class:`UsageProblem`, one line, exit status 2."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from ..strategies.base import Mode, Strategy
from ..strategies.errors import UsageError
from .presets import Preset
from .workload import WorkloadSpec


class UsageProblem(UsageError):
    """Bad input: reported as one line, exit status 2."""


# Options shared by `run` and `compare`. A workload field's option says its default in its
# help; its value None means "not given": the --workload file's value, or that default.
_SPEC = WorkloadSpec()


def _field(name: str, text: str) -> str:
    value = getattr(_SPEC, name)
    return (
        f"{text.rstrip('.')} (default {value:g})."
        if not isinstance(value, str)
        else (f"{text.rstrip('.')} (default {value}).")
    )


ModeOpt = Annotated[Mode, typer.Option("--mode", "-m", help="How workers run.")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-w", help=_field("workers", "Concurrent workers."))
]
NodesOpt = Annotated[
    int | None, typer.Option("--nodes", "-n", help=_field("nodes", "Servers (replicas)."))
]
UsersOpt = Annotated[int | None, typer.Option("--users", help=_field("users", "Distinct users."))]
OpsOpt = Annotated[
    int | None,
    typer.Option(
        "--operations", help=_field("operations", "Client operations per worker per pass.")
    ),
]
ReadRatioOpt = Annotated[
    float | None,
    typer.Option(
        "--read-ratio", help=_field("read_ratio", "Share of reads in the mixed workload.")
    ),
]
SessionOpt = Annotated[
    float | None,
    typer.Option(
        "--session-length", help=_field("session_length", "Mean seconds online (and offline).")
    ),
]
HeartbeatOpt = Annotated[
    float | None,
    typer.Option(
        "--heartbeat-interval", help=_field("heartbeat_interval", "Seconds between heartbeats.")
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--session-timeout", help=_field("session_timeout", "Seconds of silence before expiry.")
    ),
]
SyncOpt = Annotated[
    int | None,
    typer.Option("--sync-every", help=_field("sync_every", "Operations per worker between syncs.")),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help=_field("seed", "Seed of the workload."))
]
PipelineOpt = Annotated[
    int | None,
    typer.Option(
        "--pipeline", help=_field("pipeline", "Operations per round trip (service clients).")
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help=_field(
            "rate",
            "Open loop: pace the verification pass at this many operations a second over "
            "all workers, and measure latency from each one's intended start (0: closed loop).",
        ),
    ),
]
ArrivalsOpt = Annotated[
    str | None,
    typer.Option("--arrivals", help=_field("arrivals", "Open-loop arrivals: poisson or constant.")),
]
ScenarioOpt = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        help="A shaped scenario: storm, disconnect, churn, skew or daily (shipped), or a "
        "TOML file of shapes.",
    ),
]
RedisUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="Use this Redis (redis://, rediss://, unix://) instead of starting one "
        "[default: $REDIS_URL, for strategies served by Redis].",
    ),
]
RealFaultsOpt = Annotated[
    bool,
    typer.Option(
        "--real-faults",
        help="Also pause and kill each strategy's server under client processes "
        "(pause, kill; 2 clients, 3 s; seeded) and check every read.",
    ),
]
WorkloadOpt = Annotated[
    Path | None,
    typer.Option(
        "--workload", help="TOML file of workload fields: they replace the defaults, options them."
    ),
]
PresetOpt = Annotated[
    Preset | None,
    typer.Option(
        "--preset",
        case_sensitive=False,
        help="How hard to time: quick (default: 1 process, no interval), ci (9 processes: "
        "a rerun interval and a gate), fast, rigorous (pyperf's), smoke (one value).",
    ),
]
ProcessesOpt = Annotated[
    int | None, typer.Option("--processes", help="pyperf worker processes per benchmark.")
]
ValuesOpt = Annotated[int | None, typer.Option("--values", help="Timed values per process.")]
WarmupsOpt = Annotated[
    int | None, typer.Option("--warmups", help="Untimed values per process first.")
]
MinTimeOpt = Annotated[float | None, typer.Option("--min-time", help="Shortest value, in seconds.")]
AffinityOpt = Annotated[
    str | None, typer.Option("--affinity", help="CPUs of the worker processes, e.g. 0 or 0-1.")
]
FastOpt = Annotated[bool, typer.Option("--fast", help="pyperf's --fast preset.")]
RigorousOpt = Annotated[bool, typer.Option("--rigorous", help="pyperf's --rigorous preset.")]
SmokeOpt = Annotated[
    bool,
    typer.Option("--smoke", help="One value per benchmark: checks a setup, not for figures."),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")]
PyperfOpt = Annotated[
    Path | None,
    typer.Option("--pyperf", help="Also write the timings as a pyperf suite (compare_to, stats)."),
]
MdOpt = Annotated[
    Path | None, typer.Option("--md", help="Also write the table as Markdown (report show -f md).")
]
CsvOpt = Annotated[
    Path | None, typer.Option("--csv", help="Also write the figures as CSV (report show -f csv).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing report file.")]
ParamOpt = Annotated[
    str | None,
    typer.Option(
        "--param", help="Scan one workload field: e.g. workers=1,2,4 or read-ratio=0,0.5."
    ),
]
SaveOpt = Annotated[
    str | None,
    typer.Option("--save", help="Also keep the report as NAME in .countbench/ (for --baseline)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide", help="Every detail in the table (intervals, faults, article), for ~190 columns."
    ),
]
MaxErrorOpt = Annotated[
    str | None,
    typer.Option(
        "--max-error",
        help="Fail (exit 1) when a final count is further than this from the users online: "
        "a number of users, or a percentage such as 1%.",
    ),
]


SPEC_FIELDS = frozenset(f.name for f in fields(WorkloadSpec))

#: Every shared option by parameter name: its annotation and default.
SHARED: dict[str, tuple[Any, Any]] = {
    "mode": (ModeOpt, Mode.THREAD),
    "workers": (WorkersOpt, None),
    "nodes": (NodesOpt, None),
    "users": (UsersOpt, None),
    "operations": (OpsOpt, None),
    "read_ratio": (ReadRatioOpt, None),
    "session_length": (SessionOpt, None),
    "heartbeat_interval": (HeartbeatOpt, None),
    "session_timeout": (TimeoutOpt, None),
    "sync_every": (SyncOpt, None),
    "seed": (SeedOpt, None),
    "pipeline": (PipelineOpt, None),
    "rate": (RateOpt, None),
    "arrivals": (ArrivalsOpt, None),
    "scenario": (ScenarioOpt, None),
    "workload": (WorkloadOpt, None),
    "preset": (PresetOpt, None),
    "processes": (ProcessesOpt, None),
    "values": (ValuesOpt, None),
    "warmups": (WarmupsOpt, None),
    "min_time": (MinTimeOpt, None),
    "affinity": (AffinityOpt, None),
    "fast": (FastOpt, False),
    "rigorous": (RigorousOpt, False),
    "smoke": (SmokeOpt, False),
    "json": (JsonOpt, None),
    "pyperf": (PyperfOpt, None),
    "md": (MdOpt, None),
    "csv": (CsvOpt, None),
    "save": (SaveOpt, None),
    "param": (ParamOpt, None),
    "force": (ForceOpt, False),
    "quiet": (QuietOpt, False),
    "wide": (WideOpt, False),
    "redis_url": (RedisUrlOpt, None),
    "real_faults": (RealFaultsOpt, False),
    "max_error": (MaxErrorOpt, None),
}
#: What ``run`` and ``compare`` share: every option above, in this order.
MEASURING = tuple(SHARED)

Command = TypeVar("Command", bound=Callable[..., None])


def with_options(*names: str) -> Callable[[Command], Command]:
    """Give a command the shared options ``names`` (keys of :data:`SHARED`) besides its own.

    They come after the command's positional parameters, in ``names``' order (which may
    place the command's own keyword-only parameters among them), and before its other
    keyword-only ones; ``--help`` shows them so. The command takes them as ``**options``."""

    def wrap(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True).parameters
        keyword = inspect.Parameter.KEYWORD_ONLY
        params = [p for p in own.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        for name in names:
            if name in own:
                params.append(own[name])
                continue
            annotation, default = SHARED[name]
            params.append(inspect.Parameter(name, keyword, default=default, annotation=annotation))
        params += [p for p in own.values() if p.kind is keyword and p.name not in names]

        @functools.wraps(command)
        def with_shared(**values: Any) -> None:
            command(**values)

        with_shared.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return cast(Command, with_shared)

    return wrap


def spec_from(workload: Path | None, options: dict[str, Any]) -> WorkloadSpec:
    """The workload: the file's (or the defaults), with every option the user gave."""
    from .shaped import load

    base = WorkloadSpec.from_toml(workload, load) if workload else WorkloadSpec()
    given = {k: v for k, v in options.items() if k in SPEC_FIELDS}
    if given.get("scenario") is not None:
        given["scenario"], given["shapes"] = load(given["scenario"])
    return base.with_overrides(given)


LIMITS = {"processes": (1, 1000), "values": (1, 1000), "warmups": (0, 1000)}
MAX_MIN_TIME = 60.0


def controls_from(options: dict[str, Any]) -> Any:
    """The timing controls: one preset (``--preset`` or its shortcut flags) and pyperf's
    own options over it; each checked here, before any work."""
    from .timing import Controls

    chosen = [(p, f"--{p}") for p in (Preset.FAST, Preset.RIGOROUS, Preset.SMOKE) if options[p]]
    named = options.get("preset")
    if named is not None:
        chosen.insert(0, (Preset(named), f"--preset {named}"))
    if len({p for p, _ in chosen}) > 1:
        raise UsageProblem(" and ".join(label for _, label in chosen) + " exclude each other")
    preset = chosen[0][0] if chosen else Preset.QUICK
    for name, (low, high) in LIMITS.items():
        value = options.get(name)
        if value is not None and not low <= value <= high:
            raise UsageProblem(f"--{name} {value}: give {low} to {high}")
    min_time = options.get("min_time")
    if min_time is not None and not (0 < min_time <= MAX_MIN_TIME):
        raise UsageProblem(f"--min-time {min_time}: give seconds above 0, at most {MAX_MIN_TIME:g}")
    affinity = options.get("affinity")
    if affinity is not None:
        affinity = affinity_from(affinity)
    controls = Controls(
        preset,
        options.get("processes"),
        options.get("values"),
        options.get("warmups"),
        min_time,
        affinity,
    )
    if preset is Preset.SMOKE and (controls.overrides() or affinity):
        raise UsageProblem(
            "--smoke times one value: it takes no --processes, --values, "
            "--warmups, --min-time or --affinity"
        )
    return controls


def affinity_from(text: str) -> str:
    """'0-1,3' when those CPUs exist and this process may run on them."""
    import os
    import re

    cpus: set[int] = set()
    for part in text.split(","):
        found = re.fullmatch(r"\s*([0-9]+)(?:-([0-9]+))?\s*", part, re.ASCII)
        start = int(found.group(1)) if found else -1
        end = int(found.group(2) or start) if found else -1
        if not found or start > end or end - start > 4096:
            raise UsageProblem(f"--affinity {text!r}: give CPUs like 0, 0-1 or 0,2")
        cpus.update(range(start, end + 1))
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(cpus)
    missing = sorted(cpus - allowed)
    if missing:
        raise UsageProblem(
            f"--affinity {text!r}: CPU {missing[0]} is not available here "
            f"(available: {', '.join(map(str, sorted(allowed)))})"
        )
    return ",".join(map(str, sorted(cpus)))


def _uses_redis(strategies: Iterable[str | type[Strategy]]) -> bool:
    from ..strategies.base import ServiceStrategy
    from ..strategies.registry import discover

    known = None
    for strategy in strategies:
        if isinstance(strategy, str):
            known = discover() if known is None else known
            if strategy not in known:
                continue
            strategy = known[strategy]
        if issubclass(strategy, ServiceStrategy) and strategy.service.startswith("redis"):
            return True
    return False


def nodes_for(spec: WorkloadSpec, mode: Mode) -> WorkloadSpec:
    """The workload as ``mode`` runs it: process mode runs one node per worker."""
    return spec.with_overrides({"nodes": spec.workers}) if mode is Mode.PROCESS else spec


def redis_url_option(given: str | None, strategies: Iterable[str | type[Strategy]]) -> str | None:
    """The Redis the run uses instead of starting one: ``--redis-url``, else ``REDIS_URL``
    when one of ``strategies`` is served by Redis (so a REDIS_URL does not stop a run
    that never uses it); None for neither. Checked before any work: a redis://, rediss://
    or unix:// URL (else UsageProblem, exit 2) of a Redis that answers (else exit 1)."""
    label, url = "--redis-url", given
    if url is None:
        label, url = "REDIS_URL", os.environ.get("REDIS_URL") or None
        if url is None or not _uses_redis(strategies):
            return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise UsageProblem(f"{label} does not parse as a URL") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise UsageProblem(f"{label} must start with redis://, rediss:// or unix://")
    from .servers.redis_server import check_redis_url

    check_redis_url(url)  # unreachable, wrong password...
    return url
