"""What many test modules share: running the command line, finding the processes it started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

CLI = [sys.executable, "-m", "countbench.bench.cli"]
TIMEOUT = 180  # seconds for any one command; a smoke run takes about one to four


def clean_env(columns: int | None = None) -> dict[str, str]:
    """The environment of a command: no countbench settings or user's Redis inherited;
    with ``columns``, Rich's width fixed, so tables render the same in a terminal, under
    pytest and in CI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env.pop("REDIS_URL", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
        env.pop("LINES", None)
    return env


def countbench(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``countbench args`` in ``cwd`` (in a clean environment unless ``env`` is given)."""
    return subprocess.run(
        [*CLI, *map(str, args)],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``result`` after checking it succeeded, with its output in the failure message."""
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def child(process: psutil.Process, running: str) -> psutil.Process | None:
    """The first descendant of ``process`` whose command line contains ``running``."""
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        return None
    return next((c for c in children if running in cmdline(c)), None)


def marked(mark: str) -> list[psutil.Process]:
    """Processes that inherited the environment variable COUNTBENCH_TEST_MARK=mark."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("COUNTBENCH_TEST_MARK") == mark:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def smoke(operations: int = 200, users: int = 30) -> list[str]:
    """The options of a quiet one-value run on a small workload."""
    return ["--smoke", "--quiet", "--operations", str(operations), "--users", str(users)]


def partitioned(nodes: int, seed: int, schedule: list[tuple[float, float, str, bool, int]]) -> Any:
    """A small scenario with the healing partitions ``schedule`` draws (see
    :func:`partition_schedules`): each (start, length) is a share of the clients' span."""
    from countbench.bench.sim import PartitionFault, Scenario, client_span

    base = Scenario(nodes=nodes, users=80, operations=800, seed=seed, session_timeout=90.0)
    span = client_span(base)
    faults = tuple(
        PartitionFault(
            start=round(a * span, 3),
            end=round(a * span, 3) + max(1.0, round(d * span, 3)),
            layout=layout,
            one_way=one_way,
            node=node % nodes,
        )
        for a, d, layout, one_way, node in schedule
    )
    return base.with_overrides(faults=faults)


def partition_schedules() -> Any:
    """Hypothesis: one to four partitions of any layout, one-way or not."""
    from hypothesis import strategies as st

    layout = st.sampled_from(["isolate", "minority", "halves", "random"])
    partition = st.tuples(
        st.floats(0.0, 0.9), st.floats(0.01, 0.5), layout, st.booleans(), st.integers(0, 4)
    )
    return st.lists(partition, min_size=1, max_size=4)


def start_countbench(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start ``countbench args`` in its own process group (as a terminal's foreground job),
    output piped, in a clean environment at 80 columns."""
    return subprocess.Popen(
        [*CLI, *args],
        cwd=cwd,
        env=clean_env(80),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


#: Helpers that live as long as the process that started them: multiprocessing's resource
#: tracker and countbench's reaper (one each per parent process).
LIFELONG = ("resource_tracker", "countbench.bench.servers.reaper")


def children() -> set[int]:
    """This process's live descendants, except the lifelong helpers."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        line = cmdline(proc)
        if not any(name in line for name in LIFELONG):
            found.add(proc.pid)
    return found
