"""The one managed-process layer, the shared option groups and the plug-in completeness check."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time

import psutil
import pytest

from countbench.bench import cli
from countbench.bench.options import MEASURING, with_options
from countbench.bench.servers.process import ManagedProcess
from countbench.strategies import registry
from countbench.strategies.base import Consistency, ReplicatedStrategy, StrategyConfig
from countbench.strategies.errors import RunError
from countbench.strategies.gcounter import GCounterReplica, GCounterStrategy
from countbench.strategies.spec import BALANCE

# A child that ignores SIGTERM: only SIGKILL ends it.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def _sleeper(code: str = "import time; time.sleep(60)") -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, "-c", code],
        what="sleeper",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_status(pid: int, status: str) -> None:
    deadline = time.monotonic() + 5.0
    while psutil.Process(pid).status() != status:
        assert time.monotonic() < deadline, f"pid {pid} never became {status}"
        time.sleep(0.01)


def test_a_paused_process_is_resumed_then_stopped() -> None:
    proc = _sleeper()
    proc.pause()
    _wait_status(proc.pid, psutil.STATUS_STOPPED)
    started = time.monotonic()
    proc.stop(grace=5.0)
    assert time.monotonic() - started < 4.0  # SIGTERM acted: no wait for the grace period
    assert not proc.running and proc.poll() is not None
    proc.stop()  # twice is fine


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    proc = _sleeper(STUBBORN)
    time.sleep(0.3)  # let it install its handler
    proc.stop(grace=0.3)
    assert proc.poll() == -9


def test_kill_reaps_at_once_and_runs_in_its_own_process_group() -> None:
    proc = _sleeper()
    assert os.getpgid(proc.pid) == proc.pid  # its own group: a terminal's Ctrl-C skips it
    proc.kill()
    assert proc.poll() == -9
    assert not psutil.pid_exists(proc.pid)  # reaped, not a zombie


def test_a_missing_binary_is_one_line_of_the_callers_error() -> None:
    class Mine(RunError):
        pass

    with pytest.raises(Mine) as info:
        ManagedProcess(
            ["/nonexistent/redis-server"],
            what="redis-server",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            error=Mine,
        )
    assert "cannot run /nonexistent/redis-server" in str(info.value)
    assert "\n" not in str(info.value)


def test_run_and_compare_take_every_measuring_option_in_one_order() -> None:
    for command, own_first, own_last in (
        (cli.run, ["strategy"], ["history"]),
        (cli.compare, ["strategies"], []),
    ):
        names = list(inspect.signature(command).parameters)
        assert names == own_first + list(MEASURING) + own_last


def test_with_options_refuses_an_option_nobody_declared() -> None:
    def command(**options: object) -> None:
        return None

    with pytest.raises(KeyError):
        with_options("no_such_option")(command)


def test_with_options_hands_the_shared_values_over_by_name() -> None:
    seen: dict[str, object] = {}

    @with_options("quiet", "force")
    def command(name: str, **options: object) -> None:
        seen.update(options, name=name)

    assert list(inspect.signature(command).parameters) == ["name", "quiet", "force"]
    command(name="x", quiet=True, force=False)
    assert seen == {"name": "x", "quiet": True, "force": False}


class NoReplica(ReplicatedStrategy):
    name = "no-replica"
    summary = "forgot to say how a replica is built"
    specification = BALANCE


class WithReplicaClass(ReplicatedStrategy):
    name = "with-replica-class"
    summary = "a replica from its node id alone"
    specification = BALANCE
    replica_class = GCounterReplica


def test_a_replicated_plugin_must_say_how_a_replica_is_built() -> None:
    assert registry._missing(NoReplica) == "replica_class (or replica())"
    assert registry._missing(WithReplicaClass) is None
    assert registry._missing(GCounterStrategy) is None
    assert isinstance(WithReplicaClass(StrategyConfig()).replica(2), GCounterReplica)
    assert WithReplicaClass.consistency is Consistency.EVENTUAL
