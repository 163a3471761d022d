"""A report's timings as one pyperf BenchmarkSuite file, for pyperf's own tools.

Every operation of every strategy in a report keeps the full pyperf benchmark it came
from (``operations.<op>.pyperf``, a one-benchmark suite). :func:`pyperf_suite` loads each
with pyperf's public API (``pyperf.Benchmark.loads``) and gathers them into one
``pyperf.BenchmarkSuite``; the benchmark names are countbench's
``strategy.operation.mode.wWORKERS`` (e.g. ``pncounter.writes.thread.w2``), so two exports
pair up by name in ``python -m pyperf compare_to base.json new.json``, and
``python -m pyperf stats``, ``show``, ``hist`` and ``check`` read an export as they read
a file pyperf wrote. A ``--param`` scan exports every point, each benchmark's name ending
in the point (``local.writes.thread.w1.users=1000``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyperf

from .json_report import ReportPathError, check_output_path, write_json_atomic
from .load import ReportError, point_label, scan_points


def _benchmark(name: str, operation: Mapping[str, Any]) -> Any:
    try:
        benchmark = pyperf.Benchmark.loads(json.dumps(operation["pyperf"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportError(f"{name}: its pyperf benchmark does not load: {exc}") from None
    if benchmark.get_name() != name:
        raise ReportError(
            f"{name}: its pyperf benchmark is named {benchmark.get_name()!r}, not {name!r}"
        )
    return benchmark


def _metadata(report: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, str]:
    """What was compared, as pyperf metadata on every run (``python -m pyperf show
    --metadata`` prints it): countbench's version and commit, the strategy's package, the
    servers' versions, the workload and the timing preset."""
    git = report.get("git") or {}
    package = result["strategy"].get("package") or {}
    found = {
        "countbench_version": str(report["tool"]["version"]),
        "countbench_commit": str(git.get("commit") or "unknown")
        + (" (dirty)" if git.get("dirty") else ""),
        "countbench_strategy_package": f"{package.get('name', '?')} {package.get('version', '?')}",
        "countbench_workload": json.dumps(
            {"mode": report["mode"], **report["workload"]}, separators=(",", ":"), sort_keys=True
        ),
        "countbench_preset": str(report["preset"]),
    }
    for name, facts in (report.get("services") or {}).items():
        if isinstance(facts, Mapping) and facts.get("version"):
            found[f"countbench_{name}_version"] = str(facts["version"])
    return found


def pyperf_suite(report: Mapping[str, Any]) -> Any:
    """A ``pyperf.BenchmarkSuite`` of every operation of every strategy of ``report`` (a
    valid report, see :func:`countbench.reports.load.validate`), in report order (scan
    points in the order scanned).

    :class:`ReportError` when an operation's stored pyperf benchmark does not load, is not
    named as its ``benchmark`` field says, or two benchmarks share a name."""
    benchmarks = []
    names: set[str] = set()
    for parameter, value, point in scan_points(report):
        label = point_label(parameter, value)
        for result in point["results"]:
            for operation in result["operations"].values():
                benchmark = _benchmark(operation["benchmark"], operation)
                metadata = _metadata(point, result)
                if label:
                    metadata["name"] = f"{operation['benchmark']}.{label}"
                    metadata["countbench_scan_point"] = label
                benchmark.update_metadata(metadata)
                name = benchmark.get_name()
                if name in names:
                    raise ReportError(f"two benchmarks are named {name!r}; pyperf needs each once")
                names.add(name)
                benchmarks.append(benchmark)
    if not benchmarks:
        raise ReportError("the report holds no benchmark")
    return pyperf.BenchmarkSuite(benchmarks)


def write_pyperf_suite(report: Mapping[str, Any], path: Path, force: bool) -> None:
    """Write ``report``'s timings to ``path`` as a pyperf JSON file (see :func:`pyperf_suite`).

    The path is checked first (:class:`ReportPathError`: a directory, a missing or
    read-only folder, an existing file without ``force``, or a ``.gz`` name, which pyperf
    would expect compressed); the file is then written atomically (a temporary file beside
    it, renamed into place), so a reader sees the old file or the whole new one."""
    if path.suffix == ".gz":
        raise ReportPathError(f"{path}: countbench writes plain JSON; drop the .gz suffix")
    check_output_path(path, force)
    buffer = io.StringIO()
    pyperf_suite(report).dump(buffer, compact=True)
    data: dict[str, Any] = json.loads(buffer.getvalue())
    write_json_atomic(path, data, force)
