"""Saved reports: loading and validation, the exporters (JSON, Markdown, CSV, pyperf), the
``diff`` gate, and the one-line errors of the report commands.

Two real reports are made once per module, in a subprocess: one with the quick preset
over 4 worker processes (``--processes 4``: the fewest the significance test and the ±
use) and one smoke report (1 process, 1 value). Every report a test writes is validated
against the schema. The commands are run through a small Typer app that registers them as
``bench/cli.py`` does, and maps report errors to exit status 2 as its ``main()`` does.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import itertools
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyperf
import pytest
import typer
from typer.testing import CliRunner

from countbench.bench.report_cli import diff, report_app
from countbench.reports.csv_export import COLUMNS, to_csv
from countbench.reports.diff import (
    ALPHA,
    diff_reports,
    mann_whitney_u,
    min_p_value,
    parse_threshold,
    u_distribution,
)
from countbench.reports.diff_view import verdict as diff_verdict
from countbench.reports.json_report import ReportPathError, write_json_atomic
from countbench.reports.load import ReportError, ReportUsageError, load_report, schema
from countbench.reports.markdown import to_markdown
from countbench.reports.pyperf_export import write_pyperf_suite
from countbench.reports.samples import MIN_PROCESSES, estimate
from helpers import countbench, ok

SMALL = ["--quiet", "--operations", "500", "--users", "60"]
STRATEGIES = ("local", "pncounter")
OPERATIONS = ("writes", "reads", "mixed")
TIMEOUT = 180

Report = dict[str, Any]


# --- fixtures and helpers -------------------------------------------------------------------


def _measure(path: Path, *args: str) -> Report:
    ok(countbench("compare", *args, *SMALL, "--json", path, cwd=path.parent, timeout=TIMEOUT))
    return load_report(path)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of real reports: 'quick' (local, pncounter; quick preset, 4 processes) and
    'smoke' (local, gcounter; one value per benchmark, gcounter over-counts)."""
    folder = tmp_path_factory.mktemp("reports")
    paths = {"quick": folder / "quick.json", "smoke": folder / "smoke.json"}
    _measure(paths["quick"], ",".join(STRATEGIES), "--processes", "4", "--values", "2")
    _measure(paths["smoke"], "local,gcounter", "--smoke")
    return paths


@pytest.fixture
def quick(reports: dict[str, Path]) -> Report:
    return load_report(reports["quick"])


@pytest.fixture
def smoke(reports: dict[str, Path]) -> Report:
    return load_report(reports["smoke"])


def quick_path(quick: Report, folder: Path) -> Path:
    """The quick report, saved in ``folder``."""
    return save(folder / "quick.json", quick)


def save(path: Path, report: Report) -> Path:
    """Write ``report`` as a report file and check that it still validates."""
    write_json_atomic(path, report, force=True)
    load_report(path)
    return path


def operation(report: Report, strategy: str, name: str) -> dict[str, Any]:
    result = next(r for r in report["results"] if r["strategy"]["name"] == strategy)
    op: dict[str, Any] = result["operations"][name]
    return op


def scaled(report: Report, strategy: str, name: str, factor: float) -> Report:
    """A copy of ``report`` where every time of one operation is ``factor`` times longer
    (the pyperf benchmark too), with its figures recomputed from the values."""
    out = copy.deepcopy(report)
    op = operation(out, strategy, name)
    op["values"] = [v * factor for v in op["values"]]
    op["mean"] = statistics.fmean(op["values"])
    op["stdev"] = statistics.stdev(op["values"]) if len(op["values"]) > 1 else 0.0
    for run in op["pyperf"]["benchmarks"][0]["runs"]:
        if "values" in run:
            run["values"] = [v * factor for v in run["values"]]
        run["warmups"] = [[loops, v * factor] for loops, v in run.get("warmups", [])]
    op.update(estimate(op).to_dict())
    return out


def tightest(report: Report) -> tuple[str, str]:
    """The (strategy, operation) whose processes spread least (max / min ops/s)."""
    rates = {
        (r["strategy"]["name"], name): estimate(op).process_ops_per_sec
        for r in report["results"]
        for name, op in r["operations"].items()
    }
    spread = {key: max(found) / min(found) for key, found in rates.items()}
    return min(spread, key=spread.__getitem__)


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.add_typer(report_app, name="report")
    app.command("diff")(diff)
    return app


APP = _app()


def invoke(*args: str | Path) -> tuple[int, str, str]:
    """(exit status, stdout, error line) of the commands, errors mapped as main() does."""
    result = CliRunner().invoke(APP, [str(a) for a in args])
    error = ""
    status = result.exit_code
    if isinstance(result.exception, ReportError | ReportPathError):
        error, status = str(result.exception), 2
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return status, result.stdout, error


# --- loading and validation -----------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.slow
def test_real_reports_load_exactly_and_validate(reports: dict[str, Path]) -> None:
    for path in reports.values():
        assert load_report(path) == json.loads(path.read_text())
        status, out, error = invoke("report", "validate", path)
        assert (status, error) == (0, "")
        assert out == f"{path}: valid countbench report (schema 1)\n"


def test_json_round_trip(quick: Report, tmp_path: Path) -> None:
    again = save(tmp_path / "copy.json", quick)
    assert load_report(again) == quick


# --- exporters ------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table row (no cell of ours holds an escaped '|')."""
    assert line.startswith("| ") and line.endswith(" |")
    return [cell.strip() for cell in line[2:-2].split(" | ")]


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_markdown_round_trip(quick: Report) -> None:
    text = to_markdown(quick)
    lines = text.splitlines()
    head = lines[0]
    for fact in ("thread mode", "2 workers", "3 nodes", "60 users", "preset quick"):
        assert fact in head
    assert quick["created"] in head
    assert lines[1] == ""
    assert _cells(lines[2])[:3] == ["Strategy", "Reads/s", "Writes/s"]
    mix = quick["mix"]
    reads, beats = (round(100 * mix[k] / sum(mix.values())) for k in ("read", "heartbeat"))
    assert _cells(lines[2])[3].startswith(f"Mixed/s ({reads}% reads, {beats}% heartbeats, ")
    assert _cells(lines[2])[4:] == ["Correct (spec)", "Error vs online", "Complexity"]
    assert _cells(lines[3]) == ["---", "---:", "---:", "---:", "---", "---", "---"]
    rows = [_cells(line) for line in lines[4 : 4 + len(quick["results"])]]
    assert lines[4 + len(rows)] == ""
    assert lines[-1].startswith("_pyperf")
    for cells, result in zip(rows, quick["results"], strict=True):
        assert len(cells) == 7
        assert cells[0] == result["strategy"]["name"]
        for cell, name in zip(cells[1:4], ("reads", "writes", "mixed"), strict=True):
            op = result["operations"][name]  # 4 processes: a median, no rerun interval
            assert op["processes"] == 4 and op["rerun"] is None
            assert _number(cell) == round(op["ops_per_sec"])
        spec = result["verification"]["specification"]
        assert cells[4].startswith(f"{result['strategy']['consistency_claim']} · {spec} ✓")
        assert cells[5].startswith("+0 of " + f"{result['verification']['truth']:,}")
        assert cells[6].startswith(f"{result['complexity']['lines']} lines · cc ")


def test_markdown_smoke_and_a_wrong_count(smoke: Report) -> None:
    text = to_markdown(smoke)
    assert "_smoke preset: one value per benchmark" in text
    gcounter = next(line for line in text.splitlines() if line.startswith("| gcounter"))
    # Correct against its own specification (a count of logins), far off the users online.
    assert _cells(gcounter)[4].startswith("eventual · logins ✓ · simulated ✓")
    error = _cells(gcounter)[5]
    assert error.startswith("+") and not error.startswith("+0 ")


def test_markdown_escapes_report_text(quick: Report) -> None:
    odd = copy.deepcopy(quick)
    odd["results"][0]["strategy"]["name"] = "a|b_*c*"
    row = to_markdown(odd).splitlines()[4]
    assert row.startswith(r"| a\|b\_\*c\* | ")


def test_csv_round_trip(quick: Report, smoke: Report) -> None:
    for report in (quick, smoke):
        rows = list(csv.DictReader(io.StringIO(to_csv(report))))
        assert len(rows) == len(report["results"]) * 3
        assert tuple(rows[0]) == COLUMNS
        for row in rows:
            op = operation(report, row["strategy"], row["operation"])
            result = next(r for r in report["results"] if r["strategy"]["name"] == row["strategy"])
            assert row["mode"] == result["mode"] == "thread"
            assert int(row["workers"]) == result["workers"]
            assert int(row["nodes"]) == result["nodes"]
            assert float(row["ops_per_sec"]) == op["ops_per_sec"]
            assert float(row["ops_per_sec_stdev"]) == op["ops_per_sec_stdev"]
            assert int(row["processes"]) == op["processes"]
            assert row["rerun_low"] == row["rerun_high"] == ""  # fewer than 9 processes
            assert float(row["mean_s"]) == op["mean"]
            assert float(row["stdev_s"]) == op["stdev"]
            assert int(row["n_values"]) == len(op["values"])
            assert int(row["max_abs_error"]) == result["verification"]["max_abs_error"]
    wrong = {
        (r["strategy"], r["max_abs_error"] != "0")
        for r in csv.DictReader(io.StringIO(to_csv(smoke)))
    }
    assert wrong == {("local", False), ("gcounter", True)}


def test_show_formats(reports: dict[str, Path], quick: Report) -> None:
    status, out, _ = invoke("report", "show", reports["quick"])
    assert status == 0 and "countbench compare" in out and "pncounter" in out
    status, out, _ = invoke("report", "show", reports["quick"], "--format", "md")
    assert (status, out) == (0, to_markdown(quick))
    status, out, _ = invoke("report", "show", reports["quick"], "-f", "csv")
    assert (status, out) == (0, to_csv(quick))


def _pyperf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyperf", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pyperf_export_works_with_pyperf(quick: Report, tmp_path: Path) -> None:
    strategy, name = tightest(quick)
    slower = save(tmp_path / "slower.json", scaled(quick, strategy, name, 1 / 0.7))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_pyperf_suite(quick, a, force=False)
    status, out, error = invoke("report", "pyperf", slower, b)
    assert (status, out, error) == (0, f"pyperf file written to {b}\n", "")

    suite = pyperf.BenchmarkSuite.load(str(a))
    expected = {f"{s}.{o}.thread.w2" for s in STRATEGIES for o in OPERATIONS}
    assert set(suite.get_benchmark_names()) == expected
    for bench in suite.get_benchmarks():
        s, o = bench.get_name().split(".")[:2]
        assert list(bench.get_values()) == operation(quick, s, o)["values"]
        metadata = bench.get_metadata()  # what was compared travels with the timings
        assert metadata["countbench_version"] == quick["tool"]["version"]
        assert metadata["countbench_strategy_package"].startswith("countbench ")
        assert json.loads(metadata["countbench_workload"])["users"] == 60
    slowed = pyperf.BenchmarkSuite.load(str(b)).get_benchmark(f"{strategy}.{name}.thread.w2")
    assert list(slowed.get_values()) == operation(load_report(slower), strategy, name)["values"]

    compared = _pyperf("compare_to", a, b)
    assert compared.returncode == 0, compared.stderr
    assert f"{strategy}.{name}.thread.w2" in compared.stdout
    stats = _pyperf("stats", a)
    assert stats.returncode == 0, stats.stderr
    assert "Number of benchmarks: 6" in stats.stdout


def test_pyperf_export_is_atomic_and_refuses_to_replace(quick: Report, tmp_path: Path) -> None:
    path = tmp_path / "suite.json"
    write_pyperf_suite(quick, path, force=False)
    first = path.read_text()
    with pytest.raises(ReportPathError, match="exists; use --force"):
        write_pyperf_suite(quick, path, force=False)
    assert path.read_text() == first
    write_pyperf_suite(scaled(quick, "local", "writes", 2.0), path, force=True)
    assert path.read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite.json"]  # no temporary left
    with pytest.raises(ReportPathError, match="directory"):
        write_pyperf_suite(quick, tmp_path, force=True)
    with pytest.raises(ReportPathError, match="does not exist"):
        write_pyperf_suite(quick, tmp_path / "missing" / "x.json", force=False)
    with pytest.raises(ReportPathError, match="gz"):
        write_pyperf_suite(quick, tmp_path / "x.json.gz", force=False)


# --- the significance test ------------------------------------------------------------------


def _brute_force(n: int, m: int) -> list[int]:
    counts = [0] * (n * m + 1)
    for first in itertools.combinations(range(n + m), n):
        others = [k for k in range(n + m) if k not in first]
        counts[sum(1 for a in first for b in others if a > b)] += 1
    return counts


def test_u_distribution_matches_enumeration() -> None:
    for n, m in [(1, 1), (2, 3), (3, 3), (4, 5), (5, 2), (6, 6)]:
        assert u_distribution(n, m) == _brute_force(n, m)


def test_mann_whitney_known_values() -> None:
    assert mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == (0.0, 2 / 252)
    assert mann_whitney_u([6, 7, 8], [1, 2, 3]) == (9.0, 0.1)
    same = [3.0, 1.0, 2.0, 5.0, 4.0, 6.0]
    assert mann_whitney_u(same, same) == (18.0, 1.0)
    assert mann_whitney_u([2.0] * 4, [2.0] * 5)[1] == 1.0
    # Beyond the exact limit, the normal approximation: clearly apart, clearly the same.
    low = [float(k) for k in range(30)]
    assert mann_whitney_u(low, [k + 100 for k in low])[1] < 1e-9
    assert mann_whitney_u(low, [k + 0.5 for k in low])[1] > 0.5
    assert min_p_value(3, 3) == 0.1 > ALPHA > min_p_value(4, 4)


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.1), ("0.1", 0.1), (" 2.5% ", 0.025), ("0", 0.0), ("0%", 0.0)]
)
def test_parse_threshold(text: str, value: float) -> None:
    assert math.isclose(parse_threshold(text), value)


# --- the gate -------------------------------------------------------------------------------


def test_gate_passes_a_report_compared_to_itself(reports: dict[str, Path], quick: Report) -> None:
    status, out, error = invoke("diff", reports["quick"], reports["quick"])
    assert (status, error) == (0, "")
    assert "REGRESSION" not in out and "ok: no significant slowdown above 10.0%" in out
    result = diff_reports(quick, quick, 0.1)
    assert len(result.pairs) == 6 and not result.failed
    assert all(p.p_value == 1.0 and p.change_pct == 0 and not p.significant for p in result.pairs)
    assert result.warnings == [] and result.consistency == []


def test_gate_fails_a_significant_30_percent_slowdown(quick: Report, tmp_path: Path) -> None:
    strategy, name = tightest(quick)
    rates = estimate(operation(quick, strategy, name)).process_ops_per_sec
    if max(rates) / min(rates) >= 1 / 0.7:
        pytest.skip("this machine is too noisy: every operation's processes spread over 43%")
    base = save(tmp_path / "base.json", quick)
    slower = save(tmp_path / "slower.json", scaled(quick, strategy, name, 1 / 0.7))
    status, out, error = invoke("diff", base, slower, "--fail-above", "10%")
    assert (status, error) == (1, "")
    assert "REGRESSION" in out and f"FAILED: {strategy} {name} -30.0%" in out
    result = diff_reports(quick, load_report(slower), 0.1)
    (regression,) = result.regressions
    assert (regression.strategy, regression.operation) == (strategy, name)
    assert math.isclose(regression.change_pct, -30.0)
    n = len(rates)
    assert n == MIN_PROCESSES
    assert regression.p_value == min_p_value(n, n)  # every new process slower than every old
    # The same slowdown under a 35% threshold, or the other way round (faster), passes.
    assert invoke("diff", base, slower, "--fail-above", "0.35")[0] == 0
    assert invoke("diff", slower, base)[0] == 0


def test_gate_passes_a_slowdown_under_the_threshold(quick: Report, tmp_path: Path) -> None:
    strategy, name = tightest(quick)
    base = save(tmp_path / "base.json", quick)
    slower = save(tmp_path / "slower.json", scaled(quick, strategy, name, 1 / 0.95))
    status, out, error = invoke("diff", base, slower, "--fail-above", "10%")
    assert (status, error) == (0, "")
    assert "-5.0%" in out and "REGRESSION" not in out


@pytest.mark.parametrize(
    ("counts", "what"),
    [
        (lambda truth: [truth + 3], "max error 0 -> 3"),
        (lambda truth: [truth, truth + 3, truth], "max error 0 -> 3, nodes agree -> disagree"),
    ],
)
def test_gate_fails_when_a_count_stops_being_exact(
    quick: Report, tmp_path: Path, counts: Callable[[int], list[int]], what: str
) -> None:
    wrong = copy.deepcopy(quick)
    check = wrong["results"][1]["verification"]
    assert check["max_abs_error"] == 0 and check["nodes_agree"]
    check["counts"] = counts(check["truth"])
    check["errors"] = [c - check["truth"] for c in check["counts"]]
    check["max_abs_error"] = max(abs(e) for e in check["errors"])
    check["nodes_agree"] = len(set(check["counts"])) == 1
    base = save(tmp_path / "base.json", quick)
    new = save(tmp_path / "new.json", wrong)
    status, out, error = invoke("diff", base, new)
    assert (status, error) == (1, "")
    assert f"consistency regression: pncounter: {what}" in out
    assert "FAILED: pncounter consistency" in out
    # Getting exact again is no failure.
    assert invoke("diff", new, base)[0] == 0


def test_gate_fails_when_a_strategy_stops_being_correct_against_its_spec(
    smoke: Report, tmp_path: Path
) -> None:
    """gcounter is never exact against the users online (it cannot count a logout), so
    only its specification can tell that it broke: a count off its logins, or a
    simulated verdict that turns into a bug."""
    base = copy.deepcopy(smoke)
    gcounter = next(r for r in base["results"] if r["strategy"]["name"] == "gcounter")
    assert gcounter["verification"]["correct"] and gcounter["verification"]["max_abs_error"]
    broken = copy.deepcopy(base)
    result = next(r for r in broken["results"] if r["strategy"]["name"] == "gcounter")
    result["verification"]["counts"] = [c - 1 for c in result["verification"]["counts"]]
    result["verification"]["in_spec"] = [False] * len(result["verification"]["counts"])
    result["verification"]["correct"] = False
    result["simulation"]["verdict"].update(passed=False, expected=False, reasons=["made up"])
    old, new = save(tmp_path / "base.json", base), save(tmp_path / "new.json", broken)
    status, out, _ = invoke("diff", old, new)
    assert status == 1
    assert "verification correct vs its spec ✓ -> ✗" in out
    assert "simulated correct vs its spec ✓ -> ✗" in out
    # Getting correct again is no failure; smoke reports cannot judge speed: exit 2.
    assert invoke("diff", new, old)[0] == 2


def test_gate_never_calls_too_few_values_significant(smoke: Report, tmp_path: Path) -> None:
    base = save(tmp_path / "base.json", smoke)
    slower = save(tmp_path / "slower.json", scaled(smoke, "local", "writes", 2.0))
    status, out, _ = invoke("diff", base, slower)
    assert status == 2  # a gate that can judge nothing says so, and does not pass
    assert "note: not enough independent samples to judge: 1 worker process, at least 4" in out
    assert "NOT JUDGED: not enough independent samples to judge any operation's speed" in out
    assert "REGRESSION" not in out and "not judged" in out
    result = diff_reports(smoke, load_report(slower), 0.1)
    pair = next(p for p in result.pairs if (p.strategy, p.operation) == ("local", "writes"))
    assert (pair.p_value, pair.significant, pair.regression) == (None, False, False)
    assert math.isclose(pair.change_pct, -50.0)
    # gcounter over-counts in both reports: an inexact count that stays so is no failure.
    assert result.consistency == []


def test_gate_three_processes_a_side_are_not_enough(quick: Report) -> None:
    few = copy.deepcopy(quick)
    for result in few["results"]:
        for op in result["operations"].values():
            runs = op["pyperf"]["benchmarks"][0]["runs"]
            del runs[3:]
    pair = diff_reports(few, scaled(few, "local", "reads", 10.0), 0.1).pairs[1]
    assert (pair.strategy, pair.operation, pair.n_base, pair.n_new) == ("local", "reads", 3, 3)
    assert pair.p_value is None and not pair.significant and not pair.regression
    assert pair.note is not None and "not enough independent samples" in pair.note


def _processes(report: Report, name: str, rates: list[float], spread: float = 0.001) -> None:
    """Make every operation of strategy ``name`` timed by one process per rate, each with
    five values within ``spread`` of its own rate (tight values, far-apart processes)."""
    result = next(r for r in report["results"] if r["strategy"]["name"] == name)
    for op in result["operations"].values():
        runs = []
        for rate in rates:
            values = [1 / rate * (1 + spread * k) for k in (-2, -1, 0, 1, 2)]
            runs.append({"values": values, "warmups": [[1, values[0]]], "metadata": {}})
        op["pyperf"]["benchmarks"][0]["runs"] = runs
        op["values"] = [v for run in runs for v in run["values"]]
        op.update(estimate(op).to_dict())


def test_gate_does_not_take_one_process_values_as_independent(quick: Report) -> None:
    """Identical code whose processes fall in two modes (hash seed, memory layout): the
    values of each process agree closely, so the old gate, testing the 5 values of one
    process a side, saw a sure slowdown of 16%. On processes the gate sees 4 against 4
    that overlap: no regression."""
    base, new = copy.deepcopy(quick), copy.deepcopy(quick)
    _processes(base, "local", [1.9e6, 1.9e6, 1.9e6, 1.6e6])
    _processes(new, "local", [1.6e6, 1.6e6, 1.9e6, 1.6e6])
    first = [operation(r, "local", "writes")["values"][:5] for r in (base, new)]
    assert mann_whitney_u(*first)[1] < 0.01  # what the old gate saw of one process a side
    result = diff_reports(base, new, 0.1)
    writes = next(p for p in result.pairs if (p.strategy, p.operation) == ("local", "writes"))
    assert writes.change_pct < -8 and writes.p_value is not None and writes.p_value > ALPHA
    assert not result.failed
    # The same gap in every process is a regression.
    _processes(new, "local", [1.6e6, 1.6e6, 1.6e6, 1.6e6])
    _processes(base, "local", [1.9e6, 1.9e6, 1.9e6, 1.9e6])
    assert [
        p.operation for p in diff_reports(base, new, 0.1).regressions if p.strategy == "local"
    ] == list(OPERATIONS)


def test_gate_does_not_judge_different_workloads(quick: Report, tmp_path: Path) -> None:
    strategy, name = tightest(quick)
    base = save(tmp_path / "base.json", quick)
    other = scaled(quick, strategy, name, 2.0)
    other["workload"]["users"] += 1
    new = save(tmp_path / "new.json", other)
    status, out, _ = invoke("diff", base, new)
    assert status == 2 and "NOT JUDGED: the workloads differ (users 60 -> 61)" in out
    assert "-50.0%" in out and "REGRESSION" not in out  # shown, and not judged
    status, out, _ = invoke("diff", base, new, "--allow-workload-change")
    assert status == 1 and f"FAILED: {strategy} {name} -50.0%" in out


def test_another_workload_judges_no_error_change_but_still_a_contradicted_spec(
    quick: Report,
) -> None:
    """A scenario where users vanish leaves a counter further from the users online, which
    says nothing of a regression; a count that contradicts the strategy's own
    specification is a bug on any workload."""
    shaped = copy.deepcopy(quick)
    shaped["workload"]["scenario"] = "disconnect"
    result = shaped["results"][0]
    result["verification"]["max_abs_error"] = 8
    result["verification"]["errors"] = [8] * len(result["verification"]["errors"])
    judged = diff_reports(quick, shaped, 0.1)
    assert judged.unjudged and judged.consistency and not judged.failed
    assert diff_verdict(judged)[1] == "unjudged"
    result["verification"]["correct"] = False
    broken = diff_reports(quick, shaped, 0.1)
    assert broken.failed and [c.strategy for c in broken.consistency_failures] == [
        result["strategy"]["name"]
    ]


@pytest.mark.invalid_reports
def test_damaged_timings_are_never_judged_nor_passed_as_fast(quick: Report, tmp_path: Path) -> None:
    """A value that is NaN made a process infinitely fast once (1 / mean, guarded only
    against mean <= 0): a damaged report passed the gate. Now it is not judged, and
    a zero or negative value does not load."""
    damaged = copy.deepcopy(quick)
    for op in operation(damaged, "local", "writes"), operation(damaged, "local", "reads"):
        for run in op["pyperf"]["benchmarks"][0]["runs"]:
            if "values" in run:
                run["values"] = [math.nan] * len(run["values"])
    result = diff_reports(quick, damaged, 0.1)
    hurt = [p for p in result.pairs if p.strategy == "local" and p.operation != "mixed"]
    assert len(hurt) == 2
    assert all(p.p_value is None and not p.regression for p in hurt)
    assert all(p.note is not None and "damaged report" in p.note for p in hurt)
    assert "nan" in to_csv(damaged).split("\n")[1]
    # On disk such a file is not strict JSON: it never loads, so it never passes a gate.
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(damaged))
    with pytest.raises(ReportError, match="NaN is not a JSON number"):
        load_report(path)
    status, _, error = invoke("diff", quick_path(quick, tmp_path), path)
    assert status == 2 and "NaN" in error
    zero = copy.deepcopy(quick)
    operation(zero, "local", "writes")["pyperf"]["benchmarks"][0]["runs"][-1]["values"][0] = 0
    write_json_atomic(tmp_path / "zero.json", zero, force=True)
    status, _, error = invoke("diff", quick_path(quick, tmp_path), tmp_path / "zero.json")
    assert status == 2 and "schema violation" in error and "runs" in error


def _scan_of(report: Report, parameter: str, values: tuple[Any, ...]) -> Report:
    points = [copy.deepcopy(report) for _ in values]
    for point, value in zip(points, values, strict=True):
        point["workload"][parameter] = value
    return {
        **copy.deepcopy(points[0]),  # the top level repeats the first point
        "scan": {
            "parameter": parameter,
            "points": [{"value": v, "report": p} for v, p in zip(values, points, strict=True)],
        },
    }


def test_diff_pairs_scans_point_by_point(quick: Report) -> None:
    """Two scans pair by point; a scan and a plain report, or two scans of different
    parameters, pair nothing, and a note says why."""
    base = _scan_of(quick, "users", (1000, 2000))
    slower = _scan_of(quick, "users", (2000, 3000))
    result = diff_reports(base, slower, 0.1)
    names = [f"{name} @ users=2000" for name in STRATEGIES]
    assert sorted({p.strategy for p in result.pairs}) == sorted(names)
    assert result.only_in_base == [f"{name} @ users=1000" for name in STRATEGIES]
    assert result.only_in_new == [f"{name} @ users=3000" for name in STRATEGIES]
    assert result.unjudged is None  # the scanned parameter is not a change of workload
    for other, says in (
        (quick, "the base is a scan of users, the new report no scan"),
        (_scan_of(quick, "workers", (1000, 2000)), "a scan of users, the new report a scan of"),
    ):
        result = diff_reports(base, other, 0.1)
        assert result.pairs == [] and any(says in note for note in result.notes), result.notes
        assert result.unjudged and says in result.unjudged  # exit 2, not a pass
    # The workloads are compared point by point: a change in a later point is seen.
    changed = copy.deepcopy(slower)
    changed["scan"]["points"][0]["report"]["workload"]["seed"] += 1
    result = diff_reports(base, changed, 0.1)
    assert result.unjudged and "at users=2000: seed" in result.unjudged, result.unjudged


@pytest.mark.invalid_reports
@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        ("1" + "0" * 400, "users"),
        ("1e400", "users"),
        ('"a\\nb"', "users"),
        ('"' + "x" * 101 + '"', "users"),
        ("1", "users\\nx"),
        ("1", ""),
    ],
)
def test_a_scan_value_or_parameter_no_export_can_carry_is_refused(
    quick: Report, tmp_path: Path, value: str, parameter: str
) -> None:
    """Found in review: a 401-digit value, 1e400 (read as inf), a newline in a value or
    the parameter, and a 1 MB string reached plot and report pyperf as tracebacks."""
    text = json.dumps(_scan_of(quick, "users", (111111, 222222)))
    text = text.replace('"value": 111111', f'"value": {value}').replace(
        '"parameter": "users"', f'"parameter": "{parameter}"'
    )
    path = tmp_path / "hostile.json"
    path.write_text(text)
    # 1e400 is refused as it is read (any number that overflows), the others by the schema.
    with pytest.raises(ReportError, match=r"schema violation at \$\.scan|is not a finite number"):
        load_report(path)


def test_a_diff_where_nothing_pairs_is_not_judged(quick: Report) -> None:
    """Found in review: two scans with no value in common, or two reports with no
    strategy in common, passed the gate with nothing compared."""
    renamed = copy.deepcopy(quick)
    for result in renamed["results"]:
        result["strategy"]["name"] += "-other"
    for base, new in (
        (quick, renamed),
        (_scan_of(quick, "users", (30, 60)), _scan_of(quick, "users", (1000, 2000))),
    ):
        result = diff_reports(base, new, 0.1)
        assert result.pairs == [] and result.unjudged, result.notes
        assert "nothing to compare" in result.unjudged
        # ... and the verdict does not advise an option that would judge nothing either
        line, kind = diff_verdict(result)
        assert kind == "unjudged" and "--allow-workload-change" not in line
    assert diff_reports(quick, quick, 0.1).unjudged is None  # what pairs is judged


@pytest.mark.invalid_reports
def test_a_scan_with_a_value_twice_is_refused(quick: Report, tmp_path: Path) -> None:
    twice = _scan_of(quick, "users", (1000, 1000))
    path = tmp_path / "twice.json"
    write_json_atomic(path, twice, force=True)
    with pytest.raises(ReportError, match=r"\$\.scan\.points: users=1000 is scanned twice"):
        load_report(path)


def test_diff_warns_of_load_affinity_and_versions(quick: Report) -> None:
    other = copy.deepcopy(quick)
    for result in other["results"]:
        for op in result["operations"].values():
            for run in op["pyperf"]["benchmarks"][0]["runs"]:
                run.setdefault("metadata", {})["load_avg_1min"] = 9.5
    other["timing"]["affinity"] = "1"
    other["results"][0]["strategy"]["package"] = {"name": "countbench-x", "version": "2.0"}
    other["tool"]["version"] = "9.9.9"
    text = " | ".join(diff_reports(quick, other, 0.1).warnings)
    assert "the machine was busier in one run (1-minute load up to " in text
    assert "-> 9.50)" in text
    assert "the CPU affinity differs (any CPU -> 1)" in text
    assert "countbench 0.1.0 -> 9.9.9" in text
    assert "local (countbench-x) - -> 2.0" in text
    assert diff_reports(quick, copy.deepcopy(quick), 0.1).warnings == []


def test_diff_lists_one_sided_strategies_and_warns_of_other_machines(
    quick: Report, smoke: Report
) -> None:
    other = copy.deepcopy(smoke)
    other["machine"]["cpu_model"] = "Other CPU 9000"
    other["python"]["version"] = "3.13.1"
    result = diff_reports(quick, other, 0.1)
    assert result.only_in_base == ["pncounter"]
    assert result.only_in_new == ["gcounter"]
    assert [(p.strategy, p.operation) for p in result.pairs] == [("local", o) for o in OPERATIONS]
    text = " | ".join(result.warnings)
    assert "the machines differ (cpu_model " in text and "'Other CPU 9000'" in text
    assert "the Pythons differ (version " in text and "'3.13.1'" in text
    assert "the timing differs (preset quick -> smoke; " in text
    assert not result.failed
    # A report timed before the timing method was recorded (one process per benchmark,
    # loops of whole sync intervals) against one of today's.
    older = copy.deepcopy(quick)
    del older["timing"]["method"]
    (warned,) = diff_reports(older, quick, 0.1).warnings
    assert "the timing differs (preset quick -> quick; method 1 -> 2)" in warned


# --- bad input: one line each ---------------------------------------------------------------


def _bad_files(folder: Path, quick_path: Path, quick: Report) -> dict[str, tuple[Path, str]]:
    """name -> (file, what its error must say)."""
    text = quick_path.read_text()
    (folder / "not.json").write_text("countbench rocks\n")
    (folder / "truncated.json").write_text(text[: len(text) // 2])
    (folder / "empty.json").write_text("")
    (folder / "array.json").write_text("[1, 2]\n")
    (folder / "other.json").write_text('{"tool": {"name": "hyperfine"}, "schema_version": 1}')
    (folder / "plain.json").write_text('{"hello": "world"}')
    (folder / "report.json.gz").write_bytes(gzip.compress(text.encode()))
    write_pyperf_suite(quick, folder / "pyperf.json", force=True)
    newer = copy.deepcopy(quick)
    newer["schema_version"] = 2
    write_json_atomic(folder / "v2.json", newer, force=True)
    broken = copy.deepcopy(quick)
    del broken["results"][1]["operations"]["mixed"]
    write_json_atomic(folder / "broken.json", broken, force=True)
    typed = copy.deepcopy(quick)
    typed["results"][0]["verification"]["max_abs_error"] = "none"
    write_json_atomic(folder / "typed.json", typed, force=True)
    twice = copy.deepcopy(quick)
    twice["results"].append(copy.deepcopy(twice["results"][0]))
    write_json_atomic(folder / "twice.json", twice, force=True)
    scans = {}
    for name, damage in {
        "point without results": lambda point: point.pop("results"),
        "point typed": lambda point: point["results"][0]["verification"].update(
            max_abs_error="none"
        ),
        "point twice": lambda point: point["results"].append(copy.deepcopy(point["results"][0])),
        "point scans": lambda point: point.update(scan={"parameter": "users", "points": []}),
    }.items():
        scanned = copy.deepcopy(quick)
        points = [copy.deepcopy(quick), copy.deepcopy(quick)]
        damage(points[1])
        scanned["scan"] = {
            "parameter": "users",
            "points": [{"value": v, "report": p} for v, p in zip((1, 2), points, strict=True)],
        }
        scans[name] = folder / f"{name.replace(' ', '_')}.json"
        write_json_atomic(scans[name], scanned, force=True)
    top_differs = copy.deepcopy(quick)
    top_differs["scan"] = {
        "parameter": "users",
        "points": [{"value": 1, "report": copy.deepcopy(quick)}],
    }
    top_differs["preset"] = "rigorous"  # the top level no longer repeats the first point
    write_json_atomic(folder / "top_differs.json", top_differs, force=True)
    empty_scan = copy.deepcopy(quick)
    empty_scan["scan"] = {"parameter": "users", "points": []}
    write_json_atomic(folder / "empty_scan.json", empty_scan, force=True)
    (folder / "folder.json").mkdir()
    # 1e400 parses as infinity: refused like Infinity itself.
    (folder / "overflow.json").write_text(text.replace('"seed": 1', '"seed": 1, "rate": 1e400', 1))
    paced = copy.deepcopy(quick)
    paced["results"][0]["open_loop"] = {
        "offered_per_sec": 10.0,
        "arrivals": "poisson",
        "achieved_per_sec": 10.0,
        "calls": 1,
        "seconds": 1.0,
        "short": False,
        "latency": {},  # no "all": a table would have nothing to show
        "service": {"all": {"count": 1, "p99.9_us": 1.0}},
    }
    write_json_atomic(folder / "paced.json", paced, force=True)
    point = "schema violation at $.scan.points[1].report"
    return {
        "point without results": (scans["point without results"], f"{point}: 'results' is a"),
        "point typed": (scans["point typed"], f"{point}.results[0].verification.max_abs_error"),
        "point twice": (
            scans["point twice"],
            ": $.scan.points[1].report.results[2]: strategy 'local' appears twice",
        ),
        "point scans": (scans["point scans"], point),
        "empty scan": (folder / "empty_scan.json", "schema violation at $.scan.points: "),
        "top differs": (
            folder / "top_differs.json",
            ": $.scan.points[0].report differs from the top level, which repeats it",
        ),
        "missing": (folder / "missing.json", "no such file"),
        "directory": (folder / "folder.json", "is a directory, not a report file"),
        "not json": (folder / "not.json", "is not JSON: Expecting value at line 1 column 1"),
        "truncated": (folder / "truncated.json", "is truncated JSON (it stops at line "),
        "empty": (folder / "empty.json", "is empty, not a report"),
        "array": (folder / "array.json", "holds a JSON array, not a countbench report"),
        "other tool": (folder / "other.json", ": this is a hyperfine file, not a countbench"),
        "plain": (folder / "plain.json", "is not a countbench report (no schema_version)"),
        "gzip": (folder / "report.json.gz", "is gzip-compressed; countbench reads plain JSON"),
        "pyperf": (folder / "pyperf.json", ": this is a pyperf file, not a countbench report"),
        "version": (folder / "v2.json", ": report schema version 2; this countbench reads 1"),
        "schema": (
            folder / "broken.json",
            ": schema violation at $.results[1].operations: 'mixed' is a required property",
        ),
        "type": (
            folder / "typed.json",
            ": schema violation at $.results[0].verification.max_abs_error: "
            "'none' is not of type 'integer'",
        ),
        "duplicate": (folder / "twice.json", ": $.results[2]: strategy 'local' appears twice"),
        "overflow": (folder / "overflow.json", "1e400 is not a finite number"),
        "open loop without all": (
            folder / "paced.json",
            "schema violation at $.results[0].open_loop.latency: 'all' is a required property",
        ),
    }


@pytest.mark.invalid_reports
def test_every_bad_file_is_one_line(
    reports: dict[str, Path], quick: Report, tmp_path: Path
) -> None:
    for name, (path, says) in _bad_files(tmp_path, reports["quick"], quick).items():
        with pytest.raises(ReportError) as caught:
            load_report(path)
        message = str(caught.value)
        assert "\n" not in message and len(message) < 300, name
        assert message.startswith(str(path)), name
        assert says in message, (name, message)
        for command in (
            ("report", "validate", path),
            ("report", "show", path),
            ("report", "show", path, "-f", "md"),
            ("report", "pyperf", path, tmp_path / "out.json"),
            ("diff", path, reports["quick"]),
            ("diff", reports["quick"], path),
        ):
            assert invoke(*command) == (2, "", message), (name, command)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("diff", "{q}", "{q}", "--fail-above", "ten"), "--fail-above 'ten': give a percentage"),
        (("diff", "{q}", "{q}", "--fail-above", "10"), "--fail-above '10': give a percentage"),
        (("diff", "{q}", "{q}", "--fail-above", "-5%"), "--fail-above '-5%'"),
        (("diff", "{q}", "{q}", "--fail-above", "100%"), "--fail-above '100%'"),
        (("diff", "{q}", "{q}", "--fail-above", "nan"), "--fail-above 'nan'"),
        (("report", "pyperf", "{q}", "{q}"), "exists; use --force to replace it"),
    ],
)
def test_bad_options_are_one_line(
    reports: dict[str, Path], args: tuple[str, ...], says: str
) -> None:
    status, out, error = invoke(*(a.format(q=reports["quick"]) for a in args))
    assert status == 2 and out == ""
    assert "\n" not in error and says in error


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("report", "show", "{q}", "-f", "xml"), "'xml' is not one of 'table', 'md', 'csv'"),
        (("diff", "{q}", "{q}", "--format", "html"), "'html' is not one of 'table', 'md', 'json'"),
    ],
)
def test_an_unknown_format_is_refused_as_the_command_line_is_read(
    reports: dict[str, Path], tmp_path: Path, command: tuple[str, ...], says: str
) -> None:
    done = countbench(*(a.format(q=reports["quick"]) for a in command), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert done.stderr.startswith("countbench: error: Invalid value for '--format' / '-f': ")
    # Any case: md and MD are the same choice.
    shown = countbench("report", "show", reports["quick"], "-f", "MD", cwd=tmp_path)
    assert ok(shown).stdout.startswith("**countbench")


def test_usage_errors_are_report_errors() -> None:
    assert issubclass(ReportUsageError, ReportError) and issubclass(ReportError, ValueError)
    with pytest.raises(ReportUsageError):
        parse_threshold("1.5")


def test_the_compact_table_reads_at_80_and_120_columns(quick: Report) -> None:
    """Every built-in strategy's row, with an interval under each figure: at 80 and 120
    columns no line is longer than the terminal, no heading or figure is cut, every
    strategy keeps its whole name; --wide needs about 190."""
    import io

    from rich.console import Console

    from countbench.reports.table import comparison_tables
    from countbench.strategies.registry import BUILTINS

    report = copy.deepcopy(quick)
    template = report["results"][0]
    report["results"] = []
    for cls in BUILTINS:
        result = copy.deepcopy(template)
        result["strategy"]["name"] = cls.name
        for op in result["operations"].values():
            bench = op["pyperf"]["benchmarks"][0]
            timed = [run for run in bench["runs"] if "values" in run]
            bench["runs"] = bench["runs"] + timed * 3  # enough processes for an interval
        report["results"].append(result)
    for width in (80, 120):
        console = Console(width=width, record=True, file=io.StringIO())
        for shown in comparison_tables(report):
            console.print(shown)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "…" not in text
        assert all(cls.name in text for cls in BUILTINS)
        assert text.count("±") == 3 * len(BUILTINS)
    wide = Console(width=80, record=True, file=io.StringIO())
    wide.print(*comparison_tables(report, wide=True))
    assert "…" in wide.export_text()  # what the compact table is for


def test_diff_as_a_pull_request_comment_and_as_json(quick: Report, tmp_path: Path) -> None:
    base = quick_path(quick, tmp_path)
    status, markdown, _ = invoke("diff", base, base, "--format", "md")
    assert status == 0
    lines = markdown.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert table == list(range(table[0], table[0] + 2 + 3 * len(STRATEGIES)))  # one table
    assert lines[table[0]].startswith("| Benchmark | base | new | change |")
    assert lines[-1].startswith("ok: no significant slowdown above 10.0%")
    status, text, _ = invoke("diff", base, base, "--format", "json")
    assert status == 0
    data = json.loads(text)
    assert data["kind"] == "countbench-diff" and data["verdict"]["status"] == "ok"
    assert len(data["pairs"]) == 3 * len(STRATEGIES)
    assert {pair["judgement"] for pair in data["pairs"]} == {"no"}
    slower = copy.deepcopy(quick)
    for result in slower["results"]:
        for op in result["operations"].values():
            for run in op["pyperf"]["benchmarks"][0]["runs"]:
                if "values" in run:
                    run["values"] = [value * 2 for value in run["values"]]  # half the ops/s
    new = save(tmp_path / "slower.json", slower)
    status, markdown, _ = invoke("diff", base, new, "-f", "md")
    assert status == 1
    assert "**REGRESSION**" in markdown and markdown.splitlines()[-1].startswith("**FAILED: ")


def test_the_compact_table_marks_a_broken_strategy(quick: Report) -> None:
    """The compact Consistency cell is a verdict too: a count outside the specification
    shows ✗ where a correct one shows ✓."""
    import io

    from rich.console import Console

    from countbench.reports.table import comparison_tables

    def row(report: Report, name: str) -> str:
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(*comparison_tables(report))
        return next(line for line in console.export_text().splitlines() if f" {name} " in line)

    assert "✓" in row(quick, "local") and "✗" not in row(quick, "local")
    broken = copy.deepcopy(quick)
    local = next(r for r in broken["results"] if r["strategy"]["name"] == "local")
    local["verification"]["correct"] = False
    assert "✗" in row(broken, "local")


def test_an_open_loop_report_shows_its_rates_and_latency_and_says_when_short(
    tmp_path: Path,
) -> None:
    path = tmp_path / "paced.json"
    # Three workers hold different numbers of calls: each is judged against its own
    # schedule (judged over the longest worker's span, the rate looked 9 % short).
    report = _measure(
        path, "local,pncounter", "--rate", "20000", "--arrivals", "constant", "--workers", "3"
    )
    assert report["workload"]["rate"] == 20000.0
    for result in report["results"]:
        figures = result["open_loop"]
        assert figures["offered_per_sec"] == 20000.0 and figures["arrivals"] == "constant"
        assert figures["scheduled_per_sec"] == pytest.approx(20000.0, rel=0.02)
        assert figures["achieved_per_sec"] >= 0.95 * figures["scheduled_per_sec"], figures
        assert not figures["short"]
        assert figures["calls"] == sum(result["latency"][k]["count"] for k in result["latency"])
        paced, served = figures["latency"]["all"], figures["service"]["all"]
        assert paced["count"] == served["count"] == figures["calls"]
        assert paced["p50_us"] >= served["p50_us"]  # from the intended start, not later
    code, out, _ = invoke("report", "show", path)
    assert code == 0 and "Open loop: 20.0K operations/s offered" in out, out
    assert "open loop 20.0K/s constant" in " ".join(out.split()), out  # the title echoes it
    assert "short" not in out.split("Open loop")[1].split("Achieved:")[0]
    markdown = to_markdown(report)
    assert "open loop 20.0K/s constant" in markdown.splitlines()[0]
    assert "| Strategy | Achieved/s | p50 | p99 | p99.9 | Service p99.9 |" in markdown
    assert {row["rate"] for row in csv.DictReader(io.StringIO(to_csv(report)))} == {"20000.0"}
    slow = copy.deepcopy(report)
    slow["results"][1]["open_loop"]["achieved_per_sec"] = 9000.0  # the stored flag says no
    code, out, _ = invoke("report", "show", save(tmp_path / "slow.json", slow))
    assert code == 0
    rows = out.split("Open loop")[1].splitlines()
    assert any("pncounter" in row and "short" in row for row in rows), out
    assert not any("local" in row and "short" in row for row in rows), out


@pytest.mark.invalid_reports
def test_a_scenario_report_echoes_it_everywhere_and_shows_its_windows(tmp_path: Path) -> None:
    path = tmp_path / "shaped.json"
    report = _measure(path, "local,session", "--scenario", "disconnect")
    assert report["workload"]["scenario"] == "disconnect"
    assert report["workload"]["shapes"][0]["kind"] == "disconnect"
    for result in report["results"]:
        (window,) = result["scenario"]["windows"]
        assert window["reads"] > 0 and window["from"] < window["to"]
    code, out, _ = invoke("report", "show", path)
    assert code == 0 and "scenario disconnect" in out.split("\n")[0] + out.split("\n")[1]
    assert "Scenario disconnect: error during the pass" in out, out
    markdown = to_markdown(report)
    assert "scenario disconnect" in markdown.splitlines()[0]
    assert "| Strategy | Window | In: max |" in markdown
    assert {row["scenario"] for row in csv.DictReader(io.StringIO(to_csv(report)))} == {
        "disconnect"
    }
    hostile = copy.deepcopy(report)
    hostile["results"][0]["scenario"]["windows"][0]["error_max"] = -3
    (tmp_path / "hostile.json").write_text(json.dumps(hostile))
    code, _, error = invoke("report", "validate", tmp_path / "hostile.json")
    assert code == 2 and "error_max" in error, error


def test_a_scenario_named_like_rich_markup_is_shown_as_it_is(quick: Report, tmp_path: Path) -> None:
    """A scenario file's path is the user's: '[/red]' in it must not be read as markup
    (it crashed the table once, after a whole run)."""
    named = copy.deepcopy(quick)
    named["workload"]["scenario"] = "x[/red].toml"
    named["workload"]["shapes"] = [{"kind": "storm", "at": 0.5, "duration": 0.1, "share": 0.5}]
    for result in named["results"]:
        result["scenario"] = {
            "name": "x[/red].toml",
            "windows": [
                {
                    "shape": "[bold]storm",
                    "from": 1.0,
                    "to": 2.0,
                    "reads": 1,
                    "error_max": 0,
                    "error_mean": 0.0,
                    "error_net_mean": 0.0,
                }
            ],
            "outside": {"reads": 1, "error_max": 0, "error_mean": 0.0, "error_net_mean": 0.0},
        }
    code, out, _ = invoke("report", "show", save(tmp_path / "named.json", named))
    assert code == 0
    flat = " ".join(out.split())
    assert "scenario x[/red].toml" in flat and "Scenario x[/red].toml" in flat
    assert "[bold]storm" in flat
