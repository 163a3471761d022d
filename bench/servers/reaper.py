"""Nothing countbench starts outlives it, however it dies.

The first time a run starts a process (a server, a pyperf worker, a worker or client
process) it also starts a *reaper*: ``python -m countbench.bench.servers.reaper``, in a
session of its own, reading countbench's notes on a pipe: ``watch PID START`` when a child
starts, ``forget PID`` when countbench has ended it, ``dir PATH`` and ``forget-dir PATH``
for temporary folders. When the pipe reaches end of file (countbench exited: normally,
by a signal, by SIGKILL or the OOM killer) the reaper SIGKILLs every child still watched
(the PID and start time must still match, so a reused PID is left alone), removes every
folder still noted, and exits. A normal run has forgotten everything by then, so the
reaper only exits.

:func:`sweep_stale` removes the temporary folders of runs that died before their reaper
could (a reaper killed too); their names carry the PID of the countbench that made them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: The prefix of every temporary folder countbench makes; the owner's PID follows it.
TEMP_PREFIX = "countbench-"

_lock = threading.Lock()
_pipe: IO[str] | None = None
_reaper: subprocess.Popen[str] | None = None  # kept: a collected Popen would warn
_pid: int | None = None  # the process that started the reaper (a fork must not reuse it)
_swept = False


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


def _send(line: str) -> None:
    global _pipe, _pid, _reaper
    with _lock:
        if _pipe is None or _pid != os.getpid():
            if not sys.platform.startswith("linux"):
                return  # the reaper reads /proc; elsewhere, atexit and signals must do
            proc = subprocess.Popen(
                [sys.executable, "-m", "countbench.bench.servers.reaper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # a terminal's Ctrl-C or a group kill spares it
                close_fds=True,
            )
            assert proc.stdin is not None
            _pipe, _pid, _reaper = proc.stdin, os.getpid(), proc
        with contextlib.suppress(OSError, ValueError):
            _pipe.write(line + "\n")
            _pipe.flush()


def watch(pid: int | None) -> None:
    """Kill ``pid`` if countbench dies before it calls :func:`forget` (None: no process)."""
    if pid is not None:
        _send(f"watch {pid} {_start_time(pid)}")


def forget(pid: int | None) -> None:
    if pid is not None:
        _send(f"forget {pid}")


def watch_dir(path: Path) -> None:
    """Remove ``path`` if countbench dies before it calls :func:`forget_dir`."""
    _send(f"dir {path}")


def forget_dir(path: Path) -> None:
    _send(f"forget-dir {path}")


def temp_dir(kind: str) -> Path:
    """A new private (0700) temporary folder named for ``kind`` and this process, removed
    if countbench dies before :func:`remove_dir`. The first one also sweeps the folders
    dead runs left behind (:func:`sweep_stale`)."""
    global _swept
    if not _swept:
        _swept = True
        sweep_stale()
    path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-{os.getpid()}-"))
    os.chmod(path, 0o700)
    watch_dir(path)
    return path


def remove_dir(path: Path) -> None:
    """Remove a folder of :func:`temp_dir` (and stop watching it)."""
    shutil.rmtree(path, ignore_errors=True)
    forget_dir(path)


@contextlib.contextmanager
def temporary(kind: str) -> Iterator[Path]:
    """:func:`temp_dir` for the length of a ``with`` block."""
    path = temp_dir(kind)
    try:
        yield path
    finally:
        remove_dir(path)


def sweep_stale() -> list[Path]:
    """Remove this user's countbench temporary folders whose countbench is no longer
    running (named ``countbench-KIND-PID-XXXXXXXX``); the folders removed."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*-*"):
        parts = path.name.removeprefix(TEMP_PREFIX).split("-")
        if len(parts) != 3 or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        with contextlib.suppress(OSError):
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            shutil.rmtree(path)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(watched: dict[int, str], folders: set[str]) -> None:
    for pid, started in watched.items():
        if started and _start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: dict[int, str] = {}
    folders: set[str] = set()
    for line in sys.stdin:
        verb, _, rest = line.rstrip("\n").partition(" ")
        if verb == "watch":
            pid, _, started = rest.partition(" ")
            watched[int(pid)] = started
        elif verb == "forget":
            watched.pop(int(rest), None)
        elif verb == "dir":
            folders.add(rest)
        elif verb == "forget-dir":
            folders.discard(rest)
    _reap(watched, folders)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
