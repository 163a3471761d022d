"""Nothing countbench starts outlives it, even when it is SIGKILLed (a CI runner's timeout,
the OOM killer): its reaper ends every server, worker and client process it left, and
removes its temporary folders; a later run sweeps the folders of runs whose reaper died too."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from countbench.bench.servers import reaper
from helpers import CLI, clean_env, cmdline, marked

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

LONG = ["--operations", "4000", "--users", "200", "--processes", "4", "--values", "20", "--quiet"]


def _started(args: list[str], mark: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**clean_env(80), "COUNTBENCH_TEST_MARK": mark}
    return subprocess.Popen(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _running(pid: int, needle: str) -> bool:
    return any(needle in cmdline(p) for p in _tree(pid))


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _folders(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"countbench-*-{pid}-*"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--strategy", "redis-incr", *LONG], "redis-server"),
        (["run", "--strategy", "aggregate-remote", *LONG], "servers.central"),
        (["run", "--strategy", "pncounter", "--mode", "process", *LONG], "multiprocessing"),
        (
            ["chaos", "--strategy", "redis-incr", "--faults", "pause,kill", "--duration", "30"],
            "multiprocessing",
        ),
    ],
    ids=["redis", "node-servers", "process-workers", "chaos-clients"],
)
def test_sigkill_of_countbench_leaves_nothing_running(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    mark = f"reaper-{time.monotonic_ns()}"
    proc = _started(args, mark, tmp_path)
    started: list[psutil.Process] = []
    try:
        _wait_for(lambda: _running(proc.pid, needle), 60, f"{needle} never started")
        time.sleep(0.5)  # let the rest of the run's processes start too
        if needle == "redis-server":
            assert _folders(proc.pid), "no temporary folder of the run's Redis"
        started = _tree(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_for(lambda: not _alive(started), 15, f"left running: {_alive(started)}")
        assert marked(mark) == []
        assert _folders(proc.pid) == []
    finally:
        for left in _alive(started) + marked(mark):
            left.kill()
        if proc.poll() is None:
            proc.kill()


def test_a_later_run_sweeps_the_folders_of_dead_runs(tmp_path: Path) -> None:
    gone = psutil.Popen(["true"])  # a PID that has ended
    gone.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"countbench-redis-{gone.pid}-"))
    (stale / "redis.log").write_text("left behind")
    live = Path(tempfile.mkdtemp(prefix=f"countbench-redis-{os.getpid()}-"))
    old_style = Path(tempfile.mkdtemp(prefix="countbench-redis-"))  # no PID: not ours to judge
    try:
        removed = reaper.sweep_stale()
        assert stale in removed and not stale.exists()
        assert live.exists() and old_style.exists()
    finally:
        for path in (stale, live, old_style):
            reaper.remove_dir(path)
