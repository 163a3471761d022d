"""A report as CSV: one row per strategy and operation, for spreadsheets and scripts.

Columns (:data:`COLUMNS`): strategy, operation, mode, workers, nodes, ops_per_sec (the
median over worker processes), ops_per_sec_stdev (between processes), processes,
rerun_low and rerun_high (where a rerun's median should land, 95 %; empty below 9
processes; see :mod:`.samples`), mean_s, stdev_s
(seconds per operation, over every value), n_values (pyperf values), max_abs_error (the
strategy's final count against the users online), specification, correct
(``true``/``false`` against the specification in the verification pass, empty when the
report predates it), simulated_correct (the simulator's verdict: ``true``, ``false``,
``expected`` for a failure outside the specification's assumptions, empty when not
simulated) and simulated_final_error (the worst node's final error against the users
online there); then the run's context, so one file can hold several runs: preset, users,
operations, read_ratio, seed, scan_parameter and scan_value (a ``--param`` scan writes
every point's rows), run_id, created and commit.
Floats are written with Python's ``repr``, so they read back exactly; rows end with
``\\n``; a header row comes first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from .load import scan_points
from .samples import estimate
from .verdicts import EXPECTED, FAIL, PASS, UNKNOWN, simulated_status, verification_status

COLUMNS = (
    "strategy",
    "operation",
    "mode",
    "workers",
    "nodes",
    "ops_per_sec",
    "ops_per_sec_stdev",
    "processes",
    "rerun_low",
    "rerun_high",
    "mean_s",
    "stdev_s",
    "n_values",
    "max_abs_error",
    "specification",
    "correct",
    "simulated_correct",
    "simulated_final_error",
    "preset",
    "users",
    "operations",
    "read_ratio",
    "seed",
    "rate",
    "arrivals",
    "scenario",
    "scan_parameter",
    "scan_value",
    "run_id",
    "created",
    "commit",
)

_STATUS = {PASS: "true", FAIL: "false", EXPECTED: "expected", UNKNOWN: "", None: ""}


def rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The CSV's rows as dicts keyed by :data:`COLUMNS`, in report order (strategies, then
    their operations as stored: writes, reads, mixed); for a ``--param`` scan, every
    point's rows, each with its parameter and value."""
    return [
        row
        for parameter, value, point in scan_points(report)
        for row in _rows(point, parameter, value)
    ]


def _rows(report: Mapping[str, Any], parameter: str, value: Any) -> list[dict[str, Any]]:
    spec, git = report["workload"], report.get("git") or {}
    context = {
        "preset": report["preset"],
        "users": spec["users"],
        "operations": spec["operations"],
        "read_ratio": spec["read_ratio"],
        "seed": spec["seed"],
        "rate": spec.get("rate", 0),
        "arrivals": spec.get("arrivals", "") if spec.get("rate") else "",
        "scenario": spec.get("scenario", ""),
        "scan_parameter": parameter,
        "scan_value": value,
        "run_id": report["run_id"],
        "created": report["created"],
        "commit": git.get("commit", ""),
    }
    out = []
    for result in report["results"]:
        check, sim = result["verification"], result.get("simulation")
        verdicts = {
            "specification": check.get("specification", ""),
            "correct": _STATUS[verification_status(result)],
            "simulated_correct": _STATUS[simulated_status(result)],
            "simulated_final_error": (
                max(sim["final"]["errors"], key=abs, default=0) if sim else ""
            ),
        }
        for name, op in result["operations"].items():
            figure = estimate(op)
            out.append(
                {
                    "strategy": result["strategy"]["name"],
                    "operation": name,
                    "mode": result["mode"],
                    "workers": result["workers"],
                    "nodes": result["nodes"],
                    "ops_per_sec": figure.ops_per_sec,
                    "ops_per_sec_stdev": figure.stdev,
                    "processes": figure.processes,
                    "rerun_low": "" if figure.rerun is None else figure.rerun[0],
                    "rerun_high": "" if figure.rerun is None else figure.rerun[1],
                    "mean_s": op["mean"],
                    "stdev_s": op["stdev"],
                    "n_values": len(op["values"]),
                    "max_abs_error": result["verification"]["max_abs_error"],
                    **verdicts,
                    **context,
                }
            )
    return out


def to_csv(report: Mapping[str, Any]) -> str:
    """``report`` (a valid report) as CSV text with a header row (see the module doc)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(report))
    return buffer.getvalue()
