"""--param scans: one report per point, kept in the report under "scan"."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pyperf
import pytest

from helpers import countbench

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

SMALL = ["--smoke", "--quiet", "--operations", "300", "--users", "60"]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return countbench(*args, cwd=tmp_path, env=dict(os.environ), timeout=300)


def test_a_scan_keeps_every_point(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        *("compare", "local,pncounter", *SMALL, "--param", "workers=1,2"),
        *("--json", "s.json", "--pyperf", "s.pyperf.json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "s.json").read_text())
    scan = report["scan"]
    assert scan["parameter"] == "workers"
    assert [p["value"] for p in scan["points"]] == [1, 2]
    for point in scan["points"]:
        assert point["report"]["workload"]["workers"] == point["value"]
        names = [r["strategy"]["name"] for r in point["report"]["results"]]
        assert names == ["local", "pncounter"]
        assert all(r["verification"]["max_abs_error"] == 0 for r in point["report"]["results"])
    assert result.stdout.count("countbench compare") == 2  # a table per point
    check = _run(tmp_path, "report", "validate", "s.json")
    assert check.returncode == 0, check.stderr
    # Every point reaches every export: the table, Markdown and CSV of report show.
    shown = _run(tmp_path, "report", "show", "s.json")
    assert shown.returncode == 0 and shown.stdout.count("countbench compare") == 2
    markdown = _run(tmp_path, "report", "show", "s.json", "-f", "md").stdout
    assert "### workers = 1" in markdown and "### workers = 2" in markdown
    rows = list(
        csv.DictReader(io.StringIO(_run(tmp_path, "report", "show", "s.json", "-f", "csv").stdout))
    )
    assert len(rows) == 2 * 2 * 3  # points x strategies x operations
    assert {(r["scan_parameter"], r["scan_value"], r["workers"]) for r in rows} == {
        ("workers", "1", "1"),
        ("workers", "2", "2"),
    }
    assert {r["preset"] for r in rows} == {"smoke"} and all(r["run_id"] for r in rows)
    # ... pyperf's format, written at run time and by report pyperf: every point, named.
    exported = _run(tmp_path, "report", "pyperf", "s.json", "again.json")
    assert exported.returncode == 0, exported.stderr
    for name in ("s.pyperf.json", "again.json"):
        suite = pyperf.BenchmarkSuite.load(str(tmp_path / name))
        names = suite.get_benchmark_names()
        assert len(names) == 2 * 2 * 3, names
        assert sum(n.endswith(".workers=2") for n in names) == 6
        assert "pncounter.writes.thread.w2.workers=2" in names
    # ... and diff, which pairs the points of two scans.
    diffed = _run(tmp_path, "diff", "s.json", "s.json", "--format", "json")
    pairs = json.loads(diffed.stdout)["pairs"]
    assert len(pairs) == 2 * 2 * 3
    assert {p["strategy"] for p in pairs} == {
        f"{name} @ workers={n}" for name in ("local", "pncounter") for n in (1, 2)
    }
    markdown = _run(tmp_path, "diff", "s.json", "s.json", "--format", "md").stdout
    assert markdown.count("| pncounter @ workers=2 ") == 3
    assert [line.startswith("|---") for line in markdown.splitlines()].count(True) == 1


def test_a_float_parameter_with_a_dash(tmp_path: Path) -> None:
    result = _run(
        tmp_path, "run", "-s", "local", *SMALL, "--param", "read-ratio=0,0.5", "--json", "r.json"
    )
    assert result.returncode == 0, result.stderr
    points = json.loads((tmp_path / "r.json").read_text())["scan"]["points"]
    assert [p["report"]["workload"]["read_ratio"] for p in points] == [0.0, 0.5]


@pytest.mark.parametrize(
    ("param", "words"),
    [
        ("userz=1,2", "names no parameter"),
        ("workers=", "has no values"),
        ("workers=a", "is not a"),
        ("workers=0", "workers"),
        ("users=10,10", "users: 10 is given twice"),
    ],
)
def test_bad_params_are_one_line(tmp_path: Path, param: str, words: str) -> None:
    result = _run(tmp_path, "compare", "local", *SMALL, "--param", param)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("countbench: error:"), result.stderr
    assert words in lines[0]
