"""Hostile input: every bad number, file or race gets one line and the right exit status
(2 for the user's input, 1 for a failure while measuring), no traceback, and nothing the
user had is lost or replaced. Run in-process: each case is refused before any work."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from countbench.bench import cli
from countbench.bench.workload import MAX_NODES, MAX_PASS_OPERATIONS, MAX_USERS, MAX_WORKERS
from countbench.reports import json_report
from countbench.reports.json_report import ReportPathError, ReportWriteError, write_json_atomic
from helpers import clean_env, countbench, ok

SMOKE = ["--smoke", "--quiet", "--operations", "100", "--users", "20"]


def _status(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of ``countbench argv``, run in this process."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("countbench: error: "), err
    return lines[0]


NUMBERS = {
    "--users": ["0", "-1", str(MAX_USERS + 1), "10**12", "nan"],
    "--nodes": ["0", str(MAX_NODES + 1)],
    "--workers": ["0", str(MAX_WORKERS + 1)],
    "--operations": ["0", str(MAX_PASS_OPERATIONS + 1), "1000000000000"],
    "--pipeline": ["0", "100001"],
    "--sync-every": ["0"],
    "--read-ratio": ["-0.1", "1.5", "nan", "inf"],
    "--session-length": ["0", "nan", "inf", "-inf", "1e-300", "1e12"],
    "--heartbeat-interval": ["nan", "1e-300", "1e12"],
    "--session-timeout": ["nan", "inf", "0"],
    "--processes": ["0", "1000000"],
    "--values": ["0", "1000000"],
    "--warmups": ["-1", "1000000"],
    "--min-time": ["nan", "inf", "0", "1e9"],
}
CASES = [(option, value) for option, values in NUMBERS.items() for value in values]


@pytest.mark.parametrize(("option", "value"), CASES, ids=[f"{o}={v}" for o, v in CASES])
def test_every_numeric_option_refuses_sizes_and_non_finite_numbers(
    option: str, value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["run", "--strategy", "local", *SMOKE, option, value, "--json", str(tmp_path / "r")]
    status, err = _status(argv, capsys)
    assert status == 2, err
    _one_error_line(err)
    assert not (tmp_path / "r").exists()


#: Files of fields, each bad: (what reads it, the name of the case, the file's text).
FIELD_FILES = [
    ("workload", "nan", "session_length = nan\n"),
    ("workload", "inf", "heartbeat_interval = inf\n"),
    ("workload", "huge", "users = 1000000000000\n"),
    ("workload", "tiny", "session_timeout = 1e-300\n"),
    ("workload", "twice", "users = 50\n[workload]\nusers = 60\n"),
    ("workload", "not-toml", "users = \n"),
    ("workload", "binary", "\x00\x01\x02"),
    ("scenario", "sync-1e-300", "sync_interval = 1e-300\n"),
    ("scenario", "nodes", "nodes = 100000\n"),
    ("scenario", "nan", "latency = nan\n"),
    ("scenario", "twice", "nodes = 3\n[scenario]\nnodes = 4\n"),
    ("scenario", "events", "sync_interval = 0.001\nnodes = 5000\n"),
]
READERS = {
    "workload": ["run", "--strategy", "local", *SMOKE, "--workload"],
    "scenario": ["chaos", "--strategy", "pncounter", "--scenario"],
}


@pytest.mark.parametrize(
    ("reader", "name", "text"), FIELD_FILES, ids=[f"{r}-{n}" for r, n, _ in FIELD_FILES]
)
def test_every_field_of_a_workload_or_scenario_file_is_checked(
    reader: str, name: str, text: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    status, err = _status([*READERS[reader], str(path)], capsys)
    assert status == 2, err
    _one_error_line(err)


ENDLESS = [
    ["diff", "/dev/zero", "/dev/zero"],
    ["report", "show", "/dev/zero"],
    ["report", "validate", "/dev/zero"],
    ["report", "pyperf", "/dev/zero", "out.json"],
    ["plot", "/dev/zero", "-o", "out.png"],
    ["run", "--strategy", "local", "--workload", "/dev/zero"],
    ["chaos", "--strategy", "pncounter", "--scenario", "/dev/zero"],
]


@pytest.mark.parametrize("command", ENDLESS, ids=[" ".join(c[:2]) for c in ENDLESS])
def test_an_endless_input_is_read_only_so_far(
    command: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    status, err = _status(command, capsys)
    assert status == 2, err
    assert "too large" in _one_error_line(err)


def test_a_device_is_never_replaced_even_with_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target in ("/dev/null", str(fifo)):
        argv = ["run", "--strategy", "local", *SMOKE, "--json", target, "--force"]
        status, err = _status(argv, capsys)
        assert status == 2, err
        assert "not a regular file" in _one_error_line(err)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_one_path_for_two_outputs_is_refused_before_measuring(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    same = str(tmp_path / "same.json")
    argv = ["run", "--strategy", "local", *SMOKE, "--json", same, "--pyperf", same, "--force"]
    status, err = _status(argv, capsys)
    assert status == 2
    assert "different files" in _one_error_line(err)
    assert not Path(same).exists()


@pytest.mark.slow
def test_a_redis_url_in_the_environment_does_not_stop_a_run_that_never_uses_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**clean_env(), "REDIS_URL": "garbage"}
    ok(countbench("run", "--strategy", "local", *SMOKE, cwd=tmp_path, env=env))
    monkeypatch.setenv("REDIS_URL", "garbage")
    status, err = _status(["run", "--strategy", "redis-incr", *SMOKE], capsys)
    assert status == 2
    assert "REDIS_URL must start with redis://" in _one_error_line(err)
    status, err = _status(["run", "--strategy", "local", *SMOKE, "--redis-url", "garbage"], capsys)
    assert status == 2  # given on the command line, it is checked whoever uses it
    assert "--redis-url must start with redis://" in _one_error_line(err)


def test_concurrent_writers_of_one_name_without_force_one_wins(tmp_path: Path) -> None:
    """Twenty rounds of two writers racing for one path: exactly one wins each round, and
    the file is the winner's whole report."""
    for round_ in range(20):
        path = tmp_path / f"r{round_}.json"
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def write(
            who: str,
            path: Path = path,
            outcomes: list[str] = outcomes,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            try:
                write_json_atomic(path, {"who": who}, force=False)
                outcomes.append(who)
            except ReportPathError:
                outcomes.append("refused")

        threads = [threading.Thread(target=write, args=(w,)) for w in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) in (["a", "refused"], ["b", "refused"]), outcomes
        winner = next(o for o in outcomes if o != "refused")
        assert path.read_text().strip().endswith(f'"who": "{winner}"\n}}'.strip())
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    path.write_text("the user's old report\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(json_report.os, "fsync", full)
    with pytest.raises(ReportWriteError) as info:
        write_json_atomic(path, {"a": 1}, force=True)
    assert str(info.value) == f"cannot write {path}: No space left on device"
    assert path.read_text() == "the user's old report\n"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left


def test_a_full_folder_is_refused_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Usage:
        free = 4096

    monkeypatch.setattr(json_report.shutil, "disk_usage", lambda folder: Usage())
    with pytest.raises(ReportPathError, match="is full"):
        json_report.check_output_path(tmp_path / "r.json", force=False)


def test_reports_are_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cli.CountbenchError):
        write_json_atomic(tmp_path / "r.json", {"value": float("nan")})
    assert not (tmp_path / "r.json").exists()
    bad = tmp_path / "nan.json"
    bad.write_text('{"schema_version": 1, "tool": {"name": "countbench"}, "x": NaN}')
    status, err = _status(["report", "validate", str(bad)], capsys)
    assert status == 2
    assert "NaN" in _one_error_line(err)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o666 & ~umask


REAL_FAULT_OPTIONS = [
    ("--clients", "100000"),
    ("--clients", "0"),
    ("--duration", "nan"),
    ("--duration", "1e12"),
    ("--timeout", "inf"),
    ("--retries", "1000000000"),
]


@pytest.mark.parametrize(("option", "value"), REAL_FAULT_OPTIONS)
def test_real_fault_options_are_bounded_before_any_server_starts(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _status(["chaos", "--strategy", "redis-incr", option, value], capsys)
    assert status == 2, err
    assert option in _one_error_line(err)


def test_a_finished_write_is_published_even_if_it_filled_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free-space check is for before measuring: once the temporary file is written,
    the little space it leaves must not make countbench throw the report away."""

    class Usage:
        free = 4096

    monkeypatch.setattr(json_report.shutil, "disk_usage", lambda folder: Usage())
    path = tmp_path / "r.json"
    json_report.write_atomic(path, lambda handle: handle.write(b"{}\n"), force=False)
    assert path.read_bytes() == b"{}\n"
