"""``countbench plot`` and named baselines.

A real smoke report (local, pncounter) and a real chaos result (pncounter under a
partition) are made once per module in subprocesses; a scan report is built from the real
report with varied numbers. Each chart is rendered to PNG and SVG and checked to be a
valid image of some size. The command is run through a small Typer app that maps report
errors to exit status 2 as ``bench/cli.py``'s ``main()`` does.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from countbench.bench.baselines import baseline_path, save_report, saved_names
from countbench.bench.plot_cli import plot
from countbench.reports.json_report import ReportPathError
from countbench.reports.load import ReportError, ReportUsageError, load_report
from countbench.reports.plot import column_edges, is_chaos_result, plot_report

CLI = [sys.executable, "-m", "countbench.bench.cli"]
TIMEOUT = 180
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Data = dict[str, Any]


def _run(args: list[str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of a real report ('report'), a scan report built from it ('scan') and a real
    chaos result ('chaos')."""
    folder = tmp_path_factory.mktemp("plots")
    report = folder / "report.json"
    _run(
        [
            "compare",
            "local,pncounter",
            "--smoke",
            "--quiet",
            "--operations",
            "300",
            "--users",
            "60",
            "--json",
            str(report),
        ],
        folder,
    )
    chaos = folder / "chaos.json"
    _run(
        [
            "chaos",
            "--strategy",
            "pncounter",
            "--faults",
            "partition",
            "--operations",
            "2000",
            "--json",
            str(chaos),
        ],
        folder,
    )
    scan = folder / "scan.json"
    scan.write_text(json.dumps(scan_report(load_report(report))), encoding="utf-8")
    return {"report": report, "scan": scan, "chaos": chaos}


def scan_report(report: Data) -> Data:
    """``report`` with a scan over workers 1, 2, 4, 8: each point a copy of the report
    whose ops/s (and stdev) are scaled differently per strategy and operation."""
    points = []
    for index, workers in enumerate((1, 2, 4, 8)):
        point = copy.deepcopy(report)
        point["workload"]["workers"] = workers
        for rank, result in enumerate(point["results"]):
            result["workers"] = workers
            for offset, op in enumerate(result["operations"].values()):
                factor = (1 + index) ** (0.5 + 0.2 * rank) * (1 + 0.1 * offset)
                op["ops_per_sec"] *= factor
                op["ops_per_sec_stdev"] = 0.05 * op["ops_per_sec"]
        points.append({"value": workers, "report": point})
    return {**report, "scan": {"parameter": "workers", "points": points}}


def _nothing() -> None:
    """A second command, so that `plot` stays a subcommand of the test app."""


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command("plot")(plot)
    app.command("x")(_nothing)
    return app


APP = _app()


def invoke(*args: str | Path) -> tuple[int, str, str]:
    """(exit status, stdout, error line), report errors mapped to status 2 as main() does."""
    result = CliRunner().invoke(APP, [str(a) for a in args])
    if isinstance(result.exception, ReportError | ReportPathError):
        return 2, result.stdout, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, ""


def assert_image(path: Path) -> None:
    data = path.read_bytes()
    if path.suffix == ".png":
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 5_000
    else:
        root = ET.fromstring(data)
        assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
        assert len(data) > 5_000
    # Written atomically: no temporary file left beside it.
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


# --- the charts ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["report", "scan", "chaos"])
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_every_chart_renders(
    inputs: dict[str, Path], tmp_path: Path, kind: str, suffix: str
) -> None:
    out = tmp_path / f"{kind}{suffix}"
    status, stdout, error = invoke("plot", inputs[kind], "-o", out)
    assert (status, error) == (0, "")
    assert stdout == f"plot written to {out}\n"
    assert_image(out)


def test_svg_is_the_same_for_the_same_data(inputs: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads(inputs["chaos"].read_text())
    plot_report(data, tmp_path / "one.svg", force=False)
    plot_report(data, tmp_path / "two.svg", force=False)
    assert (tmp_path / "one.svg").read_bytes() == (tmp_path / "two.svg").read_bytes()


def test_chaos_result_is_recognised(inputs: dict[str, Path]) -> None:
    chaos = json.loads(inputs["chaos"].read_text())
    assert is_chaos_result(chaos)
    assert not is_chaos_result(load_report(inputs["report"]))
    timeline = chaos["timeline"]
    edges = column_edges(timeline["interval"], timeline["samples"], timeline["columns"])
    assert edges[0] == 0
    assert edges[-1] == pytest.approx(timeline["samples"] * timeline["interval"])
    assert edges[-1] <= chaos["phases"]["stop"]


def test_chaos_per_node_series_are_drawn_when_present(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """The optional ``timeline.nodes`` (not written by ``chaos`` yet) is plotted."""
    chaos = json.loads(inputs["chaos"].read_text())
    columns = len(chaos["timeline"]["max_error"])
    chaos["timeline"]["nodes"] = [
        [None if node == 1 and c % 7 == 0 else (c % 5) - node for c in range(columns)]
        for node in range(chaos["scenario"]["nodes"])
    ]
    out = tmp_path / "nodes.png"
    plot_report(chaos, out, force=False)
    assert_image(out)


def test_a_chaos_result_without_timeline_is_one_line(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    chaos = json.loads(inputs["chaos"].read_text())
    del chaos["timeline"]
    source = tmp_path / "old.json"
    source.write_text(json.dumps(chaos))
    status, _, error = invoke("plot", source, "-o", tmp_path / "old.png")
    assert status == 2
    assert error == "chaos result has no timeline; it cannot be plotted"
    assert not (tmp_path / "old.png").exists()


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chart.pdf", "chart.jpeg", "chart"])
def test_a_bad_suffix_is_one_line(inputs: dict[str, Path], tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    status, _, error = invoke("plot", inputs["report"], "-o", out)
    assert status == 2
    assert "\n" not in error
    assert error.startswith(f"{out}: cannot tell the image format")
    assert error.endswith("(use .png or .svg)")
    assert not out.exists()
    with pytest.raises(ReportUsageError):
        plot_report(load_report(inputs["report"]), out, force=True)


def test_an_existing_file_needs_force(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "chart.png"
    out.write_bytes(b"keep me")
    status, _, error = invoke("plot", inputs["report"], "-o", out)
    assert (status, error) == (2, f"{out} exists; use --force to replace it")
    assert out.read_bytes() == b"keep me"
    status, _, error = invoke("plot", inputs["report"], "-o", out, "--force")
    assert (status, error) == (0, "")
    assert_image(out)


def test_a_missing_folder_and_bad_inputs_are_one_line(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    status, _, error = invoke("plot", inputs["report"], "-o", tmp_path / "no" / "c.png")
    assert (status, error) == (2, f"folder {tmp_path / 'no'} does not exist")
    missing = tmp_path / "missing.json"
    status, _, error = invoke("plot", missing, "-o", tmp_path / "c.png")
    assert (status, error) == (2, f"{missing}: no such file")
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    status, _, error = invoke("plot", other, "-o", tmp_path / "c.png")
    assert (status, error) == (2, f"{other} is not a countbench report (no schema_version)")
    broken = json.loads(inputs["scan"].read_text())
    del broken["scan"]["points"][2]["report"]["results"]
    bad_scan = tmp_path / "bad_scan.json"
    bad_scan.write_text(json.dumps(broken))
    status, _, error = invoke("plot", bad_scan, "-o", tmp_path / "c.png")
    assert status == 2
    assert error.startswith(f"{bad_scan}: scan point 2: schema violation at $")
    assert "\n" not in error
    assert list(tmp_path.glob("*.png")) == []


# --- baselines ----------------------------------------------------------------------------


def test_baseline_round_trip(inputs: dict[str, Path], tmp_path: Path) -> None:
    report = load_report(inputs["report"])
    folder = tmp_path / ".countbench"
    path = save_report(report, "main", folder)
    assert path == folder / "main.json"
    assert baseline_path("main", folder) == path
    assert load_report(path) == report
    changed = {**report, "run_id": "again"}
    assert save_report(changed, "main", folder) == path  # saving again replaces it
    assert load_report(baseline_path("main", folder))["run_id"] == "again"
    save_report(report, "v1.2-rc_3", folder)
    assert saved_names(folder) == ["main", "v1.2-rc_3"]
    assert sorted(p.name for p in folder.iterdir()) == ["main.json", "v1.2-rc_3.json"]


def test_baselines_default_to_a_folder_in_the_current_directory(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = save_report(load_report(inputs["report"]), "base")
    assert path == Path(".countbench") / "base.json"
    assert (tmp_path / ".countbench" / "base.json").is_file()
    assert baseline_path("base") == path


@pytest.mark.parametrize(
    "name", ["", "a/b", "../up", "..", ".hidden", "with space", "é", "x" * 65, "a\nb"]
)
def test_bad_baseline_names_are_one_line(tmp_path: Path, name: str) -> None:
    calls: list[Callable[[], Path]] = [
        lambda: save_report({"schema_version": 1}, name, tmp_path),
        lambda: baseline_path(name, tmp_path),
    ]
    for call in calls:
        with pytest.raises(ReportUsageError) as caught:
            call()
        assert "\n" not in str(caught.value)
        assert str(caught.value).startswith("bad baseline name ")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_baseline_lists_the_saved_ones(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    with pytest.raises(ReportUsageError) as caught:
        baseline_path("main", folder)
    assert str(caught.value) == f"no saved report named main in {folder} (saved: none)"
    save_report({"schema_version": 1}, "zeta", folder)
    save_report({"schema_version": 1}, "alpha", folder)
    (folder / "notes.txt").write_text("not a report")
    with pytest.raises(ReportUsageError) as caught:
        baseline_path("main", folder)
    assert str(caught.value) == f"no saved report named main in {folder} (saved: alpha, zeta)"


def test_saving_into_a_file_instead_of_a_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportPathError) as caught:
        save_report({"schema_version": 1}, "main", blocker)
    assert str(caught.value) == f"{blocker} is not a folder; cannot save baseline 'main'"
