"""The one way countbench starts, pauses, kills and stops a server process.

A :class:`ManagedProcess` is a child started in its own process group (a terminal's
Ctrl-C goes to countbench, which stops its workers first and its servers last) and
signalled by its own PID only. ``stop()`` ends it for good: SIGCONT if it was paused (a
stopped process cannot act on SIGTERM), SIGTERM, then SIGKILL after a grace period; it
always reaps the child and is safe to call twice. Until then the child is watched by
:mod:`.reaper`: if countbench dies first, however it dies, the reaper kills it.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ...strategies.errors import RunError
from . import reaper

#: Seconds a server has to exit after SIGTERM before it is killed.
STOP_GRACE = 5.0


class ManagedProcess:
    """A running child process; ``what`` names it (``redis-server``). A failure to start it
    raises ``error`` with one line."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        what: str,
        stdout: IO[bytes] | int,
        stderr: IO[bytes] | int,
        cwd: Path | None = None,
        error: type[RunError] = RunError,
    ) -> None:
        try:
            self._proc: subprocess.Popen[bytes] = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                close_fds=True,
                process_group=0,
            )
        except OSError as exc:
            raise error(f"cannot run {args[0]}: {' '.join(str(exc).split())}") from None
        self.what = what
        self._paused = False
        reaper.watch(self._proc.pid)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._proc.stdout

    def poll(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return self._proc.poll()

    def wait(self) -> int:
        return self._proc.wait()

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def pause(self) -> None:
        """SIGSTOP: its connections stay open, nothing is answered."""
        if self.running:
            self._proc.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused process."""
        if self._paused and self.running:
            self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """SIGKILL and reap: no shutdown, nothing saved."""
        self._paused = False
        self._proc.kill()  # Popen skips the signal once the child is reaped
        self._proc.wait()
        self._ended()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; reaps the child. Idempotent."""
        if self.running:
            self.resume()
            self._proc.terminate()
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc.wait()
        self._ended()

    def _ended(self) -> None:
        reaper.forget(self._proc.pid)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self._proc.returncode}"
        return f"<ManagedProcess {self.what} pid={self.pid} {state}>"
