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
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from countbench.bench.baselines import baseline_path, history, save_report, saved_names
from countbench.bench.plot_cli import plot
from countbench.reports.json_report import ReportPathError
from countbench.reports.load import ReportError, ReportUsageError, load_report
from countbench.reports.plot import (
    SCALE_FACTORS,
    SCALE_LABELS,
    SMALLEST,
    WIDTH,
    bars_figure,
    chaos_figure,
    column_edges,
    growth_label,
    is_chaos_result,
    is_scale_result,
    latency_throughput_figure,
    plot_report,
    run_length_series,
    scale_figure,
    scan_figure,
)
from countbench.reports.trend import trend
from helpers import clean_env, countbench, ok

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Data = dict[str, Any]


def _run(args: list[str], cwd: Path) -> None:
    ok(countbench(*args, cwd=cwd))


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
    return {**points[0]["report"], "scan": {"parameter": "workers", "points": points}}


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


def rate_scan(report: Data) -> Data:
    """``report`` as a ``--param rate=1000,2000,4000,8000`` scan of open-loop runs: each
    strategy keeps up to 4,000 a second, then falls short (achieves 5,000 of 8,000) while
    its latency from the intended start grows a hundredfold."""
    points = []
    for offered in (1000.0, 2000.0, 4000.0, 8000.0):
        point = copy.deepcopy(report)
        point["workload"]["rate"] = offered
        for rank, result in enumerate(point["results"]):
            saturated = offered > 4000
            base = 100.0 * (1 + rank) * (100 if saturated else 1)
            latency = {f"{p}_us": base * m for p, m in (("p50", 1), ("p99", 3), ("p99.9", 5))}
            result["open_loop"] = {
                "offered_per_sec": offered,
                "arrivals": "poisson",
                "achieved_per_sec": 5000.0 if saturated else offered,
                "calls": 1000,
                "seconds": 1.0,
                "short": saturated,
                "latency": {"all": {"count": 1000, **latency}},
                "service": {"all": {"count": 1000, **latency}},
            }
        points.append({"value": offered, "report": point})
    return {**points[0]["report"], "scan": {"parameter": "rate", "points": points}}


def test_a_rate_scan_draws_latency_against_the_achieved_rate(inputs: dict[str, Path]) -> None:
    scan = rate_scan(load_report(inputs["report"]))
    figure = latency_throughput_figure(scan)
    check_readable(figure)
    check_readable(
        latency_throughput_figure(rate_scan(many_strategies(load_report(inputs["report"]))))
    )
    axes = figure.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["p50 ms", "p99 ms", "p99.9 ms"]
    line = axes[1].get_lines()[0]  # the first strategy's p99, through its four points
    assert list(line.get_xdata()) == [1000.0, 2000.0, 4000.0, 5000.0]
    assert list(line.get_ydata()) == pytest.approx([0.3, 0.3, 0.3, 30.0])
    markers = axes[1].get_lines()[1:5]
    hollow = [m.get_markerfacecolor() == "white" for m in markers]
    assert hollow == [False, False, False, True]  # only the point short of its offered rate
    plot_report(scan, inputs["report"].parent / "rate.png", force=True)
    closed = copy.deepcopy(scan)  # e.g. --param rate=0: closed loops, nothing to draw
    for point in closed["scan"]["points"]:
        for result in point["report"]["results"]:
            del result["open_loop"]
    with pytest.raises(ReportError, match="no open-loop point"):
        latency_throughput_figure(closed)


def many_strategies(report: Data, count: int = 15) -> Data:
    """``report`` with ``count`` strategies (copies of its results, renamed), as wide as a
    ``compare all``."""
    results = []
    for index in range(count):
        result = copy.deepcopy(report["results"][index % len(report["results"])])
        result["strategy"]["name"] = f"strategy-{index:02d}-with-a-long-name"
        results.append(result)
    return {**report, "results": results}


def drawn_texts(figure: Any) -> list[Any]:
    """The non-empty texts drawing ``figure`` really draws (not the tick labels made for
    ticks outside the axes' limits, which are visible but never drawn)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    drawn: list[Any] = []
    draw_text = renderer.draw_text

    def recording(gc: Any, x: float, y: float, s: str, *args: Any, **kwargs: Any) -> Any:
        mtext = kwargs.get("mtext", args[3] if len(args) > 3 else None)
        if mtext is not None and s.strip():
            drawn.append(mtext)
        return draw_text(gc, x, y, s, *args, **kwargs)

    renderer.draw_text = recording
    figure.draw(renderer)
    return drawn


def overlapping_texts(figure: Any) -> list[tuple[str, str]]:
    """Pairs of drawn texts of ``figure`` whose boxes overlap."""
    texts = drawn_texts(figure)
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer).shrunk(0.95, 0.9)) for t in texts]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]


def check_readable(figure: Any) -> None:
    """880 pixels wide (shown at full size in a pull request), no text under 8 points, no
    two texts on top of each other."""
    assert round(figure.get_size_inches()[0] * figure.dpi) == 880 == round(WIDTH * figure.dpi)
    assert overlapping_texts(figure) == []
    sizes = {t.get_text(): t.get_fontsize() for t in drawn_texts(figure)}
    assert min(sizes.values()) >= SMALLEST, sorted(sizes.items(), key=lambda kv: kv[1])[:5]


def test_every_chart_reads_at_a_pull_request_width(
    inputs: dict[str, Path], scale_inputs: dict[str, Path]
) -> None:
    report = load_report(inputs["report"])
    check_readable(bars_figure(report))
    check_readable(bars_figure(many_strategies(report)))
    check_readable(scan_figure(json.loads(inputs["scan"].read_text())))
    check_readable(scan_figure(scan_report(many_strategies(report))))
    check_readable(chaos_figure(json.loads(inputs["chaos"].read_text())))
    for kind in ("nodes", "churn"):
        check_readable(scale_figure(json.loads(scale_inputs[kind].read_text())))


def test_the_readability_check_trips_on_a_wide_or_crowded_figure(
    inputs: dict[str, Path],
) -> None:
    """The check above fails the old layout: one panel of grouped bars, 23 inches wide
    for fifteen strategies, with 7-point labels; squeezed to 880 pixels, its labels
    collide."""
    from matplotlib.figure import Figure

    report = many_strategies(load_report(inputs["report"]))
    names = [r["strategy"]["name"] for r in report["results"]]
    for width in (23.0, WIDTH):
        figure = Figure(figsize=(width, 5), dpi=120)
        ax = figure.add_subplot()
        bars = ax.bar(range(len(names)), [1e6] * len(names))
        ax.bar_label(bars, labels=["1.0M"] * len(names), fontsize=7)
        ax.set_xticks(range(len(names)), labels=names)
        with pytest.raises(AssertionError):
            check_readable(figure)
        if width == WIDTH:
            assert overlapping_texts(figure)


def test_the_catch_up_panel_is_in_microseconds(scale_inputs: dict[str, Path]) -> None:
    data = json.loads(scale_inputs["nodes"].read_text())
    assert "merge_seconds" in data["fits"], sorted(data["fits"])
    figure = scale_figure(data)
    (ax,) = [a for a in figure.get_axes() if a.get_title().startswith("catch-up merge µs")]
    stored = [float(p["merge_seconds"]) for p in data["points"]]
    drawn = list(ax.get_lines()[0].get_ydata())
    assert drawn == pytest.approx([s * SCALE_FACTORS["merge_seconds"] for s in stored])
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
    assert not any("e-0" in label for label in labels), labels


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


def test_chaos_json_has_one_error_series_per_node(inputs: dict[str, Path]) -> None:
    """``timeline.nodes``: one list per node, as long as the grid's columns, valid against
    the schema's ``chaos_timeline``, and its largest magnitudes are ``max_error``."""
    import jsonschema  # type: ignore[import-untyped]

    chaos = json.loads(inputs["chaos"].read_text())
    timeline = chaos["timeline"]
    columns = timeline["columns"]
    assert columns == len(timeline["max_error"]) > 0
    assert all(isinstance(series, str) for series in timeline["nodes"])  # run-length
    nodes = [run_length_series(series) for series in timeline["nodes"]]
    assert len(nodes) == chaos["scenario"]["nodes"] == 5
    assert all(len(series) == columns for series in nodes)
    # Small: one line per node in the indented report, not one line per value.
    written = json.dumps(timeline["nodes"], indent=2)
    assert written.count("\n") == len(nodes) + 1
    assert len(written) < len(json.dumps(nodes, indent=2)) / 3
    schema = json.loads(
        (Path(__file__).parents[1] / "reports" / "schema.json").read_text(encoding="utf-8")
    )
    definition = {**schema["$defs"]["chaos_timeline"], "$defs": schema["$defs"]}
    jsonschema.Draft202012Validator(definition).validate(timeline)
    bad = {**timeline, "nodes": ["0*3,x"]}
    assert not jsonschema.Draft202012Validator(definition).is_valid(bad)
    # No crash in this run: every node is live at every sample, and the worst node's
    # |error| is the column's max_error.
    for column, worst in enumerate(timeline["max_error"]):
        assert max(abs(series[column]) for series in nodes) == worst
    # The partition shows: the nodes' series differ.
    assert any(series != nodes[0] for series in nodes)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_chaos_per_node_series_are_drawn(
    inputs: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"chaos{suffix}"
    status, _, error = invoke("plot", inputs["chaos"], "-o", out)
    assert (status, error) == (0, "")
    assert_image(out)
    if suffix == ".svg":
        text = out.read_text(encoding="utf-8")
        for node in range(5):  # each node's line has a legend entry
            assert f"<!-- node {node} -->" in text
        assert "<!-- partition -->" in text  # the fault window is shaded and named


def test_chaos_per_node_series_with_a_down_node_are_drawn(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """Series with ``null`` (a node down) are drawn too."""
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


# --- scale curves -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scale_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real ``countbench scale --json`` curves: pncounter over nodes, compact over churn
    (retired=0,...: the fit is over retired + 1)."""
    folder = tmp_path_factory.mktemp("scale-plots")
    nodes, churn = folder / "nodes.json", folder / "churn.json"
    _run(
        ["scale", "--strategy", "pncounter", "--param", "nodes=3,10,30", "--json", str(nodes)],
        folder,
    )
    args = ["--param", "retired=0,10,40", "--users-per-node", "10", "--json", str(churn)]
    _run(["scale", "--strategy", "pncounter", *args], folder)
    return {"nodes": nodes, "churn": churn}


@pytest.mark.parametrize("kind", ["nodes", "churn"])
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_a_scale_curve_renders_log_log_with_its_fit(
    scale_inputs: dict[str, Path], tmp_path: Path, kind: str, suffix: str
) -> None:
    data = json.loads(scale_inputs[kind].read_text())
    assert is_scale_result(data) and not is_chaos_result(data)
    out = tmp_path / f"scale{suffix}"
    status, stdout, error = invoke("plot", scale_inputs[kind], "-o", out)
    assert (status, error) == (0, "")
    assert stdout == f"plot written to {out}\n"
    assert_image(out)
    if suffix == ".svg":
        text = out.read_text(encoding="utf-8")
        for figure, fit in data["fits"].items():
            # each fitted figure has its subplot, whose legend names the fitted growth
            assert f"<!-- {SCALE_LABELS[figure]} -->" in text
            factor = SCALE_FACTORS.get(figure, 1.0)
            assert f"<!-- {growth_label(fit, factor)} -->" in text
        assert text.count("<!-- measured -->") == len(data["fits"])


def test_scale_figure_axes_are_log_log(scale_inputs: dict[str, Path]) -> None:
    data = json.loads(scale_inputs["churn"].read_text())
    figure = scale_figure(data)
    axes = figure.get_axes()
    assert len(axes) == len(data["fits"]) == 2  # state bytes, sync bytes
    for ax in axes:
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert ax.get_xlabel() == "retired + 1 (log)"
        measured = ax.get_lines()[0].get_xdata()
        assert list(measured) == [1.0, 11.0, 41.0]  # retired=0 is drawn at 0 + 1
    # pncounter keeps an entry per replica that ever wrote: its sync bytes grow linearly.
    assert data["fits"]["sync_bytes"]["best"] == "linear"
    assert growth_label(data["fits"]["sync_bytes"]).startswith("fit: linear, a + b·n, b = ")


def test_a_scale_curve_without_points_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "empty-scale.json"
    source.write_text(json.dumps({"kind": "countbench-scale", "param": "nodes", "points": []}))
    status, _, error = invoke("plot", source, "-o", tmp_path / "x.png")
    assert status == 2
    assert error == "scale result has no 'param' and list of 'points' to plot"


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


@pytest.mark.invalid_reports
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
    assert error.startswith(f"{bad_scan}: schema violation at $.scan.points[2].report")
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
    changed = {**report, "run_id": "20991231T000000-again"}
    assert save_report(changed, "main", folder) == path  # saving again replaces it
    assert load_report(baseline_path("main", folder))["run_id"] == changed["run_id"]
    save_report(report, "v1.2-rc_3", folder)
    assert saved_names(folder) == ["main", "v1.2-rc_3"]
    assert sorted(p.name for p in folder.iterdir()) == ["history", "main.json", "v1.2-rc_3.json"]
    # Every save is kept: oldest first, named by run id (its UTC time) and commit.
    kept = history("main", folder)
    assert [load_report(p)["run_id"] for p in kept] == [report["run_id"], changed["run_id"]]
    commit = report["git"]["commit"][:12] + ("-dirty" if report["git"]["dirty"] else "")
    assert kept[0].name == f"{report['run_id']}-{commit}.json"
    save_report(report, "main", folder)  # the same run again: kept twice, never replaced
    assert [p.name for p in history("main", folder)] == [
        kept[0].name,
        f"{report['run_id']}-{commit}_copy2.json",
        kept[1].name,
    ]
    assert len(history("v1.2-rc_3", folder)) == 1
    with pytest.raises(ReportUsageError) as caught:
        history("other", folder)
    assert str(caught.value) == (
        f"no history of other in {folder / 'history'} (saved with a history: main, v1.2-rc_3)"
    )


def _saved_runs(report: Data, folder: Path, slowdowns: tuple[float, ...]) -> list[Data]:
    """``report`` saved as baseline 'main' once per slowdown (each run's times multiplied by
    it: 2.0 halves the ops/s), a minute apart."""
    saved = []
    for index, slowdown in enumerate(slowdowns):
        run = copy.deepcopy(report)
        run["run_id"] = f"20261205T1{index:02d}000-0000000{index}"
        for result in run["results"]:
            for op in result["operations"].values():
                for each in op["pyperf"]["benchmarks"][0]["runs"]:
                    if "values" in each:
                        each["values"] = [value * slowdown for value in each["values"]]
        save_report(run, "main", folder)
        saved.append(run)
    return saved


def test_diff_and_plot_show_the_trend_of_saved_runs(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    report = load_report(inputs["report"])
    _saved_runs(report, tmp_path / ".countbench", (1.0, 1.0, 2.0, 4.0))
    done = ok(countbench("diff", "--trend", "main", "--format", "json", cwd=tmp_path))
    data = json.loads(done.stdout)
    assert data["kind"] == "countbench-trend" and len(data["runs"]) == 4
    assert [r["run_id"][:11] for r in data["runs"]] == ["20261205T10"] * 4
    names = [s["benchmark"] for s in data["series"]]
    assert names == [
        f"{r['strategy']['name']} {op}" for r in report["results"] for op in r["operations"]
    ]
    for entry in data["series"]:
        first, *_, latest = entry["ops_per_sec"]
        assert latest == pytest.approx(first / 4)
        assert entry["change_pct"] == pytest.approx(-75.0)
    latest_two = json.loads(
        ok(countbench("diff", "--trend", "main", "--last", "2", "-f", "json", cwd=tmp_path)).stdout
    )
    assert [r["run_id"] for r in latest_two["runs"]] == [r["run_id"] for r in data["runs"][2:]]
    assert [s["change_pct"] for s in latest_two["series"]] == [pytest.approx(-50.0)] * len(names)
    markdown = ok(countbench("diff", "--trend", "main", "-f", "md", cwd=tmp_path)).stdout
    assert [line.startswith("|---") for line in markdown.splitlines()].count(True) == 1
    assert markdown.count("-75.0%") == len(names)
    shown = ok(countbench("diff", "--trend", "main", cwd=tmp_path, env=clean_env(columns=200)))
    assert "-75.0%" in shown.stdout
    plotted = ok(countbench("plot", "--trend", "main", "-o", "trend.png", cwd=tmp_path))
    assert plotted.stdout == "plot written to trend.png\n"
    assert_image(tmp_path / "trend.png")
    for args, says in (
        (("diff", "--trend", "nothing"), "no history of nothing in .countbench/history"),
        (("diff", "a.json", "--trend", "main"), "--trend NAME reads the saved runs"),
        (("diff", "--trend", "main", "--fail-above", "5%"), "--trend judges nothing"),
        (("plot", "-o", "t.png"), "give one report FILE, or --trend NAME"),
        (("plot", "a.json", "--trend", "main", "-o", "t.png"), "give one report FILE, or"),
    ):
        failed = countbench(*args, cwd=tmp_path)
        assert failed.returncode == 2 and failed.stdout == "", args
        assert failed.stderr.count("\n") == 1 and says in failed.stderr, failed.stderr


def test_a_history_save_that_fails_leaves_the_saved_report_alone(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """Found in review: with a file where the history folder goes, the save failed only
    after it had replaced NAME.json; and a FIFO among the saved runs hung the trend."""
    import os

    report = load_report(inputs["report"])
    folder = tmp_path / ".countbench"
    save_report(report, "base", folder)
    before = (folder / "base.json").read_bytes()
    save_report(report, "other", folder)
    (folder / "history" / "blocked").write_text("a file where a folder goes")
    with pytest.raises(ReportPathError, match="cannot create folder"):
        save_report({**report, "run_id": "20991231T000000-new"}, "blocked", folder)
    assert not (folder / "blocked.json").exists()
    with pytest.raises(ReportPathError):
        (folder / "history" / "base").rename(folder / "history" / "base-moved")
        (folder / "history" / "base").write_text("")
        save_report({**report, "run_id": "20991231T000000-new"}, "base", folder)
    assert (folder / "base.json").read_bytes() == before
    fifo = folder / "history" / "other" / "zzz.json"
    os.mkfifo(fifo)
    try:
        assert [p.name for p in history("other", folder)] != [] and fifo not in history(
            "other", folder
        )
    finally:
        fifo.unlink()  # the suite's check of every report left in tmp_path would open it


def test_the_trend_chart_of_saved_scans_has_a_line_per_point(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from countbench.bench.plot_cli import trend_scan

    monkeypatch.chdir(tmp_path)
    scan = json.loads(inputs["scan"].read_text())
    for index in range(2):
        run_id = f"20261205T10{index}000-x"
        points = [
            {**p, "report": {**p["report"], "run_id": run_id}} for p in scan["scan"]["points"]
        ]
        save_report({**scan, "run_id": run_id, "scan": {**scan["scan"], "points": points}}, "scans")
    drawn = trend_scan("scans", 20)
    names = [
        [r["strategy"]["name"] for r in point["report"]["results"]]
        for point in drawn["scan"]["points"]
    ]
    expected = [f"{n} @ workers={w}" for w in (1, 2, 4, 8) for n in ("local", "pncounter")]
    assert names == [expected, expected]
    plot_report(drawn, tmp_path / "trend.png", force=False)
    assert_image(tmp_path / "trend.png")


def test_a_trend_names_a_run_whose_workload_changed(inputs: dict[str, Path]) -> None:
    report = load_report(inputs["report"])
    other = copy.deepcopy(report)
    other["workload"]["users"] += 1
    result = trend("main", [report, report, other])
    assert len(result.notes) == 1 and "users" in result.notes[0], result.notes


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


def test_fault_notes_name_node_ranges() -> None:
    from countbench.reports.plot import fault_note

    sides = {"type": "partition", "sides": [[0, 1, 2, 5], [3, 4, 6]]}
    assert fault_note(sides) == "0-2,5 | 3-4,6"
    assert fault_note({**sides, "one_way": True}) == "0-2,5 -/> 3-4,6"
    assert fault_note({"type": "crash", "node": 2, "persist": True}) == "n2 persist"


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path) -> None:
    """matplotlib is the plot extra: a plain install has no plotting stack, and plot says
    in one line what to install."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert not any("matplotlib" in d for d in project["project"]["dependencies"])
    assert any("matplotlib" in d for d in project["project"]["optional-dependencies"]["plot"])
    hidden = tmp_path / "hide" / "matplotlib"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('not installed here')\n")
    env = {**clean_env(), "PYTHONPATH": str(tmp_path / "hide")}
    (tmp_path / "r.json").write_text("{}")
    done = countbench("plot", "r.json", "-o", "out.png", cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "countbench: error: countbench plot needs matplotlib: pip install 'countbench[plot]' "
        "(or pip install '.[plot]' from a clone)"
    )
    assert not (tmp_path / "out.png").exists()
