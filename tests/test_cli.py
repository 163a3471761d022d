"""End-to-end tests of the ``countbench`` command line, run in a subprocess.

Every test runs ``python -m countbench.bench.cli`` (so they work in any environment where
the package is installed) in a temporary folder, on a small workload with the ``smoke``
preset (one pyperf value per benchmark) unless it needs a run that lasts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from helpers import child, clean_env, cmdline, countbench, ok, start_countbench

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

SMALL = ["--smoke", "--operations", "300", "--users", "60"]
TIMEOUT = 120  # seconds for any one command; a smoke run takes about one to four
STRATEGIES = ("local", "session", "gcounter", "pncounter")
ERROR_PREFIX = "countbench: error:"


def cli(
    cwd: Path, *args: str, columns: int = 80, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return countbench(*args, cwd=cwd, env=clean_env(columns), timeout=timeout)


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- list


def test_list_names_every_strategy(tmp_path: Path) -> None:
    result = ok(cli(tmp_path, "list"))
    for name in STRATEGIES:
        assert name in result.stdout
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- run


@pytest.fixture(scope="module")
def pncounter_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("run")
    ok(cli(folder, "run", "--strategy", "pncounter", *SMALL, "--quiet", "--json", "r.json"))
    return load(folder / "r.json")


def test_run_report_header(pncounter_report: dict[str, Any]) -> None:
    report = pncounter_report
    assert report["schema_version"] == 1
    assert report["tool"]["name"] == "countbench"
    assert report["preset"] == "smoke"
    assert report["mode"] == "thread"
    assert isinstance(report["python"]["gil_enabled"], bool)
    assert isinstance(report["machine"]["cpu_count_logical"], int)
    assert report["machine"]["cpu_count_logical"] >= 1
    workload = report["workload"]
    assert workload["users"] == 60
    assert workload["operations"] == 300
    assert len(report["results"]) == 1


def test_run_report_result(pncounter_report: dict[str, Any]) -> None:
    result = pncounter_report["results"][0]
    assert result["strategy"]["name"] == "pncounter"
    assert set(result["operations"]) == {"writes", "reads", "mixed"}
    for stream, operation in result["operations"].items():
        assert operation["ops_per_sec"] > 0, stream
        assert operation["values"], stream
        assert all(v > 0 for v in operation["values"]), stream
    verification = result["verification"]
    assert verification["max_abs_error"] == 0
    assert verification["nodes_agree"] is True
    assert verification["counts"]
    assert all(c == verification["truth"] for c in verification["counts"])


@pytest.mark.parametrize("strategy", ["pncounter", "local"])
@pytest.mark.parametrize(
    "mode_args",
    [["--mode", "process", "--workers", "2"], ["--mode", "asyncio"]],
    ids=["process", "asyncio"],
)
def test_run_in_other_modes(tmp_path: Path, strategy: str, mode_args: list[str]) -> None:
    ok(cli(tmp_path, "run", "-s", strategy, *mode_args, *SMALL, "--quiet", "--json", "r.json"))
    report = load(tmp_path / "r.json")
    assert report["mode"] == mode_args[1]
    (result,) = report["results"]
    assert result["strategy"]["name"] == strategy
    assert result["mode"] == mode_args[1]
    assert result["verification"]["max_abs_error"] == 0
    assert result["verification"]["nodes_agree"] is True
    assert all(op["ops_per_sec"] > 0 for op in result["operations"].values())


# --------------------------------------------------------------------------- compare


def test_compare_table_and_report(tmp_path: Path) -> None:
    result = ok(cli(tmp_path, "compare", "local,gcounter", *SMALL, "--quiet", "--json", "c.json"))
    for heading in ("Approach", "Reads/s", "Writes/s", "Mixed/s", "Consistency", "Lines"):
        assert heading in result.stdout
    assert "…" not in result.stdout  # at 80 columns: no cut heading, no cut figure
    wide = ok(cli(tmp_path, "report", "show", "c.json", "--wide", columns=200))
    for heading in ("Reads/sec", "Writes/sec", "Consistency", "Complexity", "article"):
        assert heading in wide.stdout
    report = load(tmp_path / "c.json")
    assert [r["strategy"]["name"] for r in report["results"]] == ["local", "gcounter"]
    by_name = {r["strategy"]["name"]: r["verification"] for r in report["results"]}
    assert by_name["local"]["max_abs_error"] == 0
    # A grow-only counter cannot count logouts: it over-counts, on every node.
    gcounter = by_name["gcounter"]
    assert gcounter["max_abs_error"] > 0
    assert gcounter["errors"]
    assert all(e > 0 for e in gcounter["errors"])


def test_compare_all_in_process_mode_skips_session(tmp_path: Path) -> None:
    result = ok(
        cli(
            tmp_path,
            "compare",
            "all",
            "--mode",
            "process",
            "--workers",
            "2",
            *SMALL,
            "--quiet",
            "--json",
            "c.json",
        )
    )
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1, result.stderr
    assert "session" in skipped[0]
    assert "thread" in skipped[0]
    assert "asyncio" in skipped[0]
    assert "Traceback" not in result.stderr
    report = load(tmp_path / "c.json")
    names = [r["strategy"]["name"] for r in report["results"]]
    assert "session" not in names
    built_in = [n for n in names if n in STRATEGIES]
    assert built_in == ["local", "gcounter", "pncounter"]  # in the registry's order
    assert all(r["mode"] == "process" for r in report["results"])


# --------------------------------------------------------------------------- JSON file


def test_json_round_trip_and_force(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    args = ("run", "-s", "pncounter", *SMALL, "--quiet", "--json", "r.json")
    first = ok(cli(tmp_path, *args))
    assert "r.json" in first.stdout
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    assert json.loads(json.dumps(data)) == data
    before = path.read_bytes()
    inode = path.stat().st_ino

    refused = cli(tmp_path, *args)
    assert refused.returncode == 2
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(ERROR_PREFIX)
    assert "--force" in lines[0]
    assert "Traceback" not in refused.stdout + refused.stderr
    assert path.read_bytes() == before

    ok(cli(tmp_path, *args, "--force"))
    assert path.stat().st_ino != inode  # a new file renamed into place
    assert load(path)["schema_version"] == 1
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


# --------------------------------------------------------------------------- bad input

TABLE_WORKERS_0 = "[workload]\nworkers = 0\n"
RUN = ["run", "-s", "pncounter", *SMALL, "--quiet"]  # a later option wins over RUN's
UNTIMED = ["run", "-s", "pncounter", "--operations", "300", "--users", "60", "--quiet"]
CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    # id, arguments, files to create first, what the error line must name
    ("unknown-strategy", [*RUN, "-s", "nope"], {}, "pncounter"),
    ("compare-unknown-strategy", ["compare", "local,nope", *SMALL, "--quiet"], {}, "pncounter"),
    ("session-in-process", [*RUN, "-s", "session", "--mode", "process"], {}, "thread"),
    ("workers-0", [*RUN, "--workers", "0"], {}, "workers"),
    ("workers-negative", [*RUN, "--workers", "-1"], {}, "workers"),
    ("workers-not-a-number", [*RUN, "--workers", "abc"], {}, "--workers"),
    ("users-0", [*RUN, "--users", "0"], {}, "users"),
    ("users-below-workers", [*RUN, "--users", "1"], {}, "users"),
    ("nodes-0", [*RUN, "--nodes", "0"], {}, "nodes"),
    ("operations-0", [*RUN, "--operations", "0"], {}, "operations"),
    ("read-ratio-above-1", [*RUN, "--read-ratio", "1.5"], {}, "read_ratio"),
    ("read-ratio-negative", [*RUN, "--read-ratio", "-0.1"], {}, "read_ratio"),
    ("workload-missing", [*RUN, "--workload", "missing.toml"], {}, "missing.toml"),
    ("workload-directory", [*RUN, "--workload", "folder"], {"folder/keep": ""}, "directory"),
    ("workload-bad-toml", [*RUN, "--workload", "w.toml"], {"w.toml": "users = [\n"}, "TOML"),
    ("workload-unknown-field", [*RUN, "--workload", "w.toml"], {"w.toml": "bogus = 1\n"}, "bogus"),
    ("workload-workers-0", [*RUN, "--workload", "w.toml"], {"w.toml": TABLE_WORKERS_0}, "workers"),
    ("json-missing-folder", [*RUN, "--json", "nowhere/r.json"], {}, "nowhere"),
    ("json-is-directory", [*RUN, "--json", "folder"], {"folder/keep": ""}, "directory"),
    ("fast-and-rigorous", [*UNTIMED, "--fast", "--rigorous"], {}, "--rigorous"),
    (
        "preset-unknown",
        [*UNTIMED, "--preset", "turbo"],
        {},
        "'turbo' is not one of 'quick', 'ci', 'fast', 'rigorous', 'smoke'",
    ),
    ("preset-and-flag", [*UNTIMED, "--preset", "ci", "--smoke"], {}, "exclude each other"),
    ("processes-0", [*UNTIMED, "--processes", "0"], {}, "--processes 0: give 1 to 1000"),
    ("values-huge", [*UNTIMED, "--values", "100000"], {}, "--values 100000"),
    ("min-time-nan", [*UNTIMED, "--min-time", "nan"], {}, "--min-time nan"),
    ("affinity-garbage", [*UNTIMED, "--affinity", "a-b"], {}, "give CPUs like 0, 0-1"),
    ("affinity-absent-cpu", [*UNTIMED, "--affinity", "4095"], {}, "CPU 4095 is not available"),
    ("smoke-with-processes", [*UNTIMED, "--smoke", "--processes", "3"], {}, "--smoke times one"),
    ("mode-unknown", [*RUN, "--mode", "nope"], {}, "nope"),
    ("rate-negative", [*UNTIMED, "--rate", "-1"], {}, "rate must be 0 (closed loop) or from"),
    ("rate-nan", [*UNTIMED, "--rate", "nan"], {}, "rate must be 0 (closed loop) or from"),
    ("arrivals-unknown", [*UNTIMED, "--arrivals", "burst"], {}, "arrivals must be poisson or"),
    ("scenario-unknown", [*UNTIMED, "--scenario", "rush"], {}, "no scenario 'rush': give one of"),
    ("scenario-empty", [*UNTIMED, "--scenario", ""], {}, "--scenario needs a name"),
    ("param-arrivals", [*UNTIMED, "--param", "arrivals=poisson,constant"], {}, "only numeric"),
    ("arrivals-without-rate", [*UNTIMED, "--arrivals", "constant"], {}, "needs a rate"),
    ("rate-pass-too-long", [*UNTIMED, "--rate", "0.01"], {}, "the paced pass of 600 operations"),
    ("scenario-no-events", [*UNTIMED, "--read-ratio", "1", "--scenario", "storm"], {}, "has none"),
    (
        "scenario-after-the-pass",
        [*UNTIMED, "--scenario", "late.toml"],
        {"late.toml": "[[shape]]\nkind = 'storm'\nat = 1\nduration = 0.1\nshare = 0.5\n"},
        "must start within the pass",
    ),
    (
        "scenario-bad-shape",
        [*UNTIMED, "--scenario", "s.toml"],
        {"s.toml": "[[shape]]\nkind = 'flood'\nat = 0\nduration = 0\nshare = 0\n"},
        "kind must be one of storm, disconnect, churn, skew, daily",
    ),
    (
        "rate-asyncio-in-process",
        [*UNTIMED, "--mode", "asyncio", "--rate", "100"],
        {},
        "paces networked strategies only, not pncounter",
    ),
    ("run-several", [*RUN, "-s", "local,pncounter"], {}, "compare"),
]


@pytest.fixture(scope="module")
def bad_input_results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every case's command, run a few at a time (each is mostly interpreter start-up)."""
    base = tmp_path_factory.mktemp("bad-input")
    for case_id, _, files, _ in CASES:
        (base / case_id).mkdir()
        for name, text in files.items():
            (base / case_id / name).parent.mkdir(parents=True, exist_ok=True)
            (base / case_id / name).write_text(text, encoding="utf-8")

    def one(case: tuple[str, list[str], dict[str, str], str]) -> subprocess.CompletedProcess[str]:
        return cli(base / case[0], *case[1], timeout=60)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        results = list(pool.map(one, CASES))
    return {case[0]: (base / case[0], r) for case, r in zip(CASES, results, strict=True)}


@pytest.mark.parametrize(
    ("case_id", "expected"), [(c[0], c[3]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_status_2(
    bad_input_results: dict[str, tuple[Path, subprocess.CompletedProcess[str]]],
    case_id: str,
    expected: str,
) -> None:
    folder, result = bad_input_results[case_id]
    assert result.returncode == 2, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].strip()
    assert lines[0].startswith(ERROR_PREFIX)
    assert expected in lines[0]
    assert result.stdout == ""
    assert not (folder / "r.json").exists()
    assert temp_files(folder) == []


# --------------------------------------------------------------------------- workload file


WORKLOAD_TABLE = "[workload]\nusers = 40\noperations = 200\nseed = 7\n"


@pytest.mark.parametrize(
    ("text", "options", "seed"),
    [(WORKLOAD_TABLE, [], 7), (WORKLOAD_TABLE.removeprefix("[workload]\n"), ["--seed", "9"], 9)],
    ids=["table", "top-level-and-option"],
)
def test_workload_file_is_echoed(tmp_path: Path, text: str, options: list[str], seed: int) -> None:
    """The file's fields reach the report; an option given on the command line wins."""
    (tmp_path / "w.toml").write_text(text, encoding="utf-8")
    args = ["run", "-s", "pncounter", "--smoke", "--quiet", "--workload", "w.toml", *options]
    ok(cli(tmp_path, *args, "--json", "r.json"))
    workload = load(tmp_path / "r.json")["workload"]
    assert workload["users"] == 40
    assert workload["operations"] == 200
    assert workload["seed"] == seed
    assert workload["workers"] == 2  # the default, untouched by the file


# --------------------------------------------------------------------------- Ctrl-C


@dataclass
class Interrupted:
    returncode: int
    stdout: str
    stderr: str
    left_in_folder: list[str]
    children: list[str]  # the command lines of the processes it had when interrupted
    survivors: list[str]


_first_seen: dict[int, float] = {}


def _age(process: psutil.Process) -> float:
    """Seconds since the polling loop of :func:`_interrupt` first saw ``process`` (it polls
    every few milliseconds; psutil's create_time can be a second off on Linux)."""
    return time.monotonic() - _first_seen.get(process.pid, time.monotonic())


def _pyperf_worker(cli_process: psutil.Process) -> psutil.Process | None:
    """The pyperf worker process the command runs now, if any."""
    return child(cli_process, "countbench.bench.pyperf_worker")


def _node_processes(worker: psutil.Process) -> list[psutil.Process]:
    """The processes the worker's process-mode driver started (multiprocessing spawn)."""
    try:
        return [c for c in worker.children() if "spawn_main" in cmdline(c)]
    except psutil.Error:
        return []


def _timing_threads(worker: psutil.Process) -> bool:
    """Thread mode: the worker's driver threads run, so pyperf is calling the timed code."""
    try:
        return worker.num_threads() >= 3  # the main thread and the driver's two
    except psutil.Error:
        return False


def _timing_processes(worker: psutil.Process) -> bool:
    """Process mode: the worker's node processes have been running for a while."""
    nodes = _node_processes(worker)
    return bool(nodes) and min(_age(n) for n in nodes) >= 0.3


def _nodes_starting(worker: psutil.Process) -> bool:
    """Process mode: the worker has just started its node processes (they are importing)."""
    nodes = _node_processes(worker)
    return bool(nodes) and 0.06 <= max(_age(n) for n in nodes) < 0.2


def _worker_starting(worker: psutil.Process) -> bool:
    """The pyperf worker was first seen a moment ago: its Python is likely still starting."""
    return _age(worker) < 0.03


def _describe(process: psutil.Process) -> str:
    return f"{process.pid}: {cmdline(process) or '(gone)'}"


def _interrupt(
    folder: Path, args: list[str], when: Callable[[psutil.Process], bool], after: float = 3.0
) -> Interrupted:
    """Start the command, wait ``after`` seconds and until its pyperf worker is in the state
    ``when`` tells, then press Ctrl-C the way a terminal does (SIGINT to the whole foreground
    process group), and see what it leaves behind."""
    proc = start_countbench(*args, cwd=folder)
    _first_seen.clear()
    try:
        parent = psutil.Process(proc.pid)
        start = time.monotonic()
        while True:
            assert proc.poll() is None, f"ended before the interrupt: {proc.communicate()}"
            assert time.monotonic() - start < 40, "the moment to interrupt never came in 40 s"
            with contextlib.suppress(psutil.Error):
                for child in parent.children(recursive=True):
                    _first_seen.setdefault(child.pid, time.monotonic())
            worker = _pyperf_worker(parent)
            if time.monotonic() - start >= after and worker is not None and when(worker):
                break
            time.sleep(0.005)
        children = parent.children(recursive=True)
        names = [_describe(c) for c in children]
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=10)
        return Interrupted(
            proc.returncode,
            stdout,
            stderr,
            sorted(p.name for p in folder.iterdir()),
            names,
            [_describe(p) for p in alive],
        )
    finally:
        if proc.poll() is None:  # only on failure: end what this test started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


LONG = ["--json", "out.json", "--operations", "3000", "--users", "200"]  # quick preset


@pytest.fixture(scope="module")
def interrupted_thread(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    folder = tmp_path_factory.mktemp("ctrl-c-thread")
    return _interrupt(folder, ["compare", "all", *LONG], _timing_threads)


@pytest.fixture(scope="module")
def interrupted_process(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    # Two strategies, not all: the ones with servers make the run start slowly.
    folder = tmp_path_factory.mktemp("ctrl-c-process")
    return _interrupt(
        folder, ["compare", "local,pncounter", "--mode", "process", *LONG], _timing_processes
    )


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT")
INTERRUPTED = ["interrupted_thread", "interrupted_process"]


@posix_only
@pytest.mark.parametrize("run", INTERRUPTED)
def test_ctrl_c_leaves_nothing_behind(request: pytest.FixtureRequest, run: str) -> None:
    """Ctrl-C while pyperf is timing: no report, no temporary file, no process left."""
    result: Interrupted = request.getfixturevalue(run)
    assert result.children
    assert result.returncode != 0
    assert result.left_in_folder == []  # no report, no temporary file
    assert result.survivors == [], f"children {result.children} outlived it"


@posix_only
@pytest.mark.parametrize("run", INTERRUPTED)
def test_ctrl_c_prints_no_traceback(request: pytest.FixtureRequest, run: str) -> None:
    result: Interrupted = request.getfixturevalue(run)
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream
        assert "Fatal Python error" not in stream


@posix_only
@pytest.mark.parametrize("run", INTERRUPTED)
def test_ctrl_c_exits_130_with_one_line(request: pytest.FixtureRequest, run: str) -> None:
    """As documented in cli.py: status 130 and one line (after the notes, if any)."""
    result: Interrupted = request.getfixturevalue(run)
    assert result.returncode == 130, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stderr
    assert lines[-1] == "countbench: error: interrupted"
    assert [line for line in lines if "interrupted" in line] == [lines[-1]], result.stderr


@posix_only
def test_ctrl_c_while_node_processes_start_prints_no_traceback(tmp_path: Path) -> None:
    """Ctrl-C while a pyperf worker's process-mode node processes are still starting Python.
    They used to print their KeyboardInterrupt as 'Fatal Python error: init_import_site' and
    a traceback about two times in three (one attempt, to keep the file fast)."""
    args = ["compare", "local", "--mode", "process", *SMALL, "--quiet", "--json", "out.json"]
    result = _interrupt(tmp_path, args, _nodes_starting, after=0)
    assert result.returncode == 130
    assert result.left_in_folder == []
    assert result.survivors == []
    assert "Traceback" not in result.stderr, result.stderr
    assert "Fatal Python error" not in result.stderr, result.stderr


@posix_only
def test_ctrl_c_while_a_pyperf_worker_starts_prints_no_traceback(tmp_path: Path) -> None:
    # It shows about one time in two or three, so up to twelve attempts.
    args = ["compare", "local", *SMALL, "--quiet", "--json", "out.json"]
    for attempt in range(12):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        result = _interrupt(folder, args, _worker_starting, after=0)
        assert result.returncode == 130, result.stderr
        assert result.left_in_folder == []
        assert result.survivors == []
        assert "Traceback" not in result.stderr, result.stderr
        assert "Fatal Python error" not in result.stderr, result.stderr


# --------------------------------------------------------------------------- a server dies


def _central_server(cli_process: psutil.Process) -> psutil.Process | None:
    """The central service the command started (``python -m countbench.bench.servers.central``)."""
    return child(cli_process, ".servers.central")


@posix_only
def test_central_service_killed_while_timing_is_one_line(tmp_path: Path) -> None:
    """The central service dies while a pyperf worker is timing it: exactly one line on
    stderr (countbench's, with the worker's reason), status 1, no traceback, no report,
    no process left behind."""
    args = ["compare", "central", "--quiet", *LONG]
    proc = start_countbench(*args, cwd=tmp_path)
    try:
        parent = psutil.Process(proc.pid)
        start = time.monotonic()
        while True:
            assert proc.poll() is None, f"ended before the kill: {proc.communicate()}"
            assert time.monotonic() - start < 60, "no pyperf worker timed the service in 60 s"
            worker = _pyperf_worker(parent)
            server = _central_server(parent)
            if worker is not None and server is not None and _timing_threads(worker):
                break
            time.sleep(0.005)
        children = parent.children(recursive=True)
        names = [_describe(c) for c in children]
        server.kill()
        stdout, stderr = proc.communicate(timeout=60)
        _, alive = psutil.wait_procs(children, timeout=10)
    finally:
        if proc.poll() is None:  # only on failure: end what this test started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{ERROR_PREFIX} measurement failed: central."), stderr
    assert "countbench worker" not in stderr
    assert "Traceback" not in stdout + stderr
    assert [p.name for p in tmp_path.iterdir()] == []  # no report, no temporary file
    assert alive == [], f"children {names} outlived it"


# --------------------------------------------------------------------------- start-up


def _pyperf_imported(code: str) -> str:
    program = f"import sys\n{code}\nprint('pyperf' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(80),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_importing_the_cli_does_not_import_pyperf() -> None:
    assert _pyperf_imported("from countbench.bench import cli") == "False"


def test_help_does_not_import_pyperf() -> None:
    code = (
        "from countbench.bench import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit as exc:\n    assert not exc.code\n"
    )
    assert _pyperf_imported(code) == "False"


def test_list_does_not_import_pyperf() -> None:
    code = "from countbench.bench import cli\ncli.main(['list'])"
    assert _pyperf_imported(code) == "False"


def test_markdown_and_csv_exports_at_run_time(tmp_path: Path) -> None:
    """--md and --csv write what report show -f md|csv would, from the same run."""
    ok(cli(tmp_path, "run", "--strategy", "local", *SMALL, "--quiet", "--json", "r.json",
           "--md", "r.md", "--csv", "r.csv"))  # fmt: skip
    shown_md = ok(cli(tmp_path, "report", "show", "r.json", "-f", "md")).stdout
    shown_csv = ok(cli(tmp_path, "report", "show", "r.json", "-f", "csv")).stdout
    assert (tmp_path / "r.md").read_text() == shown_md
    assert (tmp_path / "r.csv").read_text() == shown_csv
    assert len(shown_csv.splitlines()) == 1 + 3  # a header, then writes, reads, mixed
    clash = cli(tmp_path, "run", "--strategy", "local", *SMALL, "--md", "x", "--csv", "x")
    assert clash.returncode == 2 and "must name different files" in clash.stderr
