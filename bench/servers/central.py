"""``central``: the central counter service, one server process that holds every session.

This is the "central counter service" strategy's server: one process keeps the
authoritative session table (a :class:`~countbench.strategies.tracker.SessionTracker` per
namespace) and every login, logout, heartbeat and read is a network hop to it. The module
holds the server (run it with ``python -m countbench.bench.servers.central``; it serves
:class:`~countbench.strategies.central_protocol.SessionRequests`, where the protocol and its
clients are), the asyncio shell that serves the protocol (:class:`LineServer`, also
``aggregate``'s nodes'), and a launcher that starts and stops the server process
(:class:`CentralService`).

Server
------
``python -m countbench.bench.servers.central [--host 127.0.0.1] [--port 0]
[--timeout 1800]`` listens on loopback only unless ``--host`` says otherwise, uses uvloop's
event loop when ``import uvloop`` works (the default asyncio loop otherwise), prints exactly
one line ``READY <host> <port> <loop>`` (``<loop>`` is ``uvloop`` or ``asyncio``) on stdout
once listening, and exits cleanly (status 0) on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import importlib
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, Final, Self

from ...strategies.central_protocol import (
    CHUNK,
    AsyncCentralClient,
    CentralClient,
    CentralServiceError,
    Connection,
    SessionRequests,
    _one_line,
)
from ...strategies.closing import Started
from .process import ManagedProcess

__all__ = ["CentralService", "LineServer", "main"]

#: The module ``CentralService`` runs with ``python -m``.
MODULE: Final = "countbench.bench.servers.central"


class LineServer:
    """Serves :class:`SessionRequests` on asyncio streams: a task per connection reads
    chunks and writes each chunk's answers with one write, so a pipelined batch costs a few
    system calls, not one per request."""

    def __init__(self, requests: SessionRequests) -> None:
        self.requests = requests
        self.writers: set[asyncio.StreamWriter] = set()

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.writers.add(writer)
        conn = Connection()
        feed = self.requests.feed
        try:
            while chunk := await reader.read(CHUNK):
                answers = feed(conn, chunk)
                if answers:
                    writer.write(answers)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to answer
        finally:
            self.writers.discard(writer)
            writer.close()

    def close_connections(self) -> None:
        for writer in list(self.writers):
            writer.close()


def _loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """uvloop's event loop when it is importable, else asyncio's default one."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop, "asyncio"
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory, "uvloop"


async def _serve(host: str, port: int, timeout: float, loop_name: str) -> None:
    state = LineServer(SessionRequests(timeout))
    server = await asyncio.start_server(state.serve_connection, host, port, limit=CHUNK)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows' loops
            loop.add_signal_handler(signum, stop.set)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"READY {bound_host} {bound_port} {loop_name}", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        state.close_connections()
        await server.wait_closed()


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the central service until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}", description="The central counter service."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free)")
    parser.add_argument(
        "--timeout", type=_positive_float, default=1800.0, help="session timeout, seconds"
    )
    args = parser.parse_args(argv)
    factory, loop_name = _loop_factory()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(args.host, args.port, args.timeout, loop_name))
    except OSError as exc:
        print(f"central: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- launcher


def _last_line(file: IO[bytes]) -> str:
    file.seek(0)
    lines = file.read().decode("utf-8", "replace").strip().splitlines()
    return _one_line(lines[-1]) if lines else ""


class CentralService(Started):
    """Starts the central service in a child process and stops it again.

    ``start()`` runs ``python -m countbench.bench.servers.central --port 0 --timeout T``
    and waits (at most ``ready_timeout`` seconds) for its ``READY`` line; then ``host``,
    ``port``, ``pid`` and ``loop`` describe it. If the child exits or never becomes ready,
    ``start()`` kills it and raises :class:`CentralServiceError`. ``stop()`` sends SIGTERM
    to the child's own PID, waits 5 s, then SIGKILLs it; it is idempotent, also runs at
    interpreter exit, and a stopped service may be started again. As a context manager the
    service is started on entry and stopped on exit. ``module`` exists for tests (a module
    that cannot start).

    Faults, for the real-fault scenarios: ``crash()`` SIGKILLs the server (its sessions are
    gone: they live only in memory); ``restart()`` starts a fresh one on the same port;
    ``pause()``/``resume()`` send SIGSTOP/SIGCONT.
    """

    def __init__(
        self,
        timeout: float = 1800.0,
        *,
        module: str = MODULE,
        ready_timeout: float = 15.0,
    ) -> None:
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive finite number, not {timeout!r}")
        self.timeout = timeout
        self.module = module
        self.ready_timeout = ready_timeout
        self._proc: ManagedProcess | None = None
        self._address: tuple[str, int, str] | None = None
        self._port_to_bind = 0
        self._last_port = 0

    # -- description ------------------------------------------------------------------

    def _require(self) -> tuple[str, int, str]:
        if self._address is None:
            raise CentralServiceError("central service is not running (call start())")
        return self._address

    @property
    def host(self) -> str:
        return self._require()[0]

    @property
    def port(self) -> int:
        return self._require()[1]

    @property
    def loop(self) -> str:
        """The server's event loop: ``uvloop`` or ``asyncio``."""
        return self._require()[2]

    @property
    def pid(self) -> int:
        self._require()
        assert self._proc is not None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._address is not None and self._proc is not None and self._proc.running

    def client(self, namespace: str, timeout: float = 5.0) -> CentralClient:
        """A blocking client connected to this service, in ``namespace``."""
        return CentralClient(self.host, self.port, namespace, timeout=timeout)

    async def async_client(self, namespace: str, timeout: float = 5.0) -> AsyncCentralClient:
        """An asyncio client connected to this service, in ``namespace``."""
        return await AsyncCentralClient.open(self.host, self.port, namespace, timeout=timeout)

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise CentralServiceError("central service already started")
        port = str(self._port_to_bind)
        cmd = [sys.executable, "-m", self.module, "--port", port, "--timeout", str(self.timeout)]
        # The child keeps its own handle on this (unlinked) file; ours is only read to
        # explain a failed start.
        with tempfile.TemporaryFile() as stderr:
            proc = ManagedProcess(
                cmd,
                what="central service",
                stdout=subprocess.PIPE,
                stderr=stderr,
                error=CentralServiceError,
            )
            self._proc = proc
            atexit.register(self.stop)
            try:
                self._address = self._read_ready(proc, stderr)
            except CentralServiceError:
                self.stop()
                raise
        self._last_port = self._address[1]
        return self

    def _read_ready(self, proc: ManagedProcess, stderr: IO[bytes]) -> tuple[str, int, str]:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.ready_timeout
        data = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CentralServiceError(
                        f"central service not ready after {self.ready_timeout:g} s"
                    )
                if not selector.select(left):
                    continue
                piece = os.read(fd, 4096)
                if not piece:
                    raise CentralServiceError(
                        f"central service exited with status {proc.wait()} before "
                        f"it was ready: {_last_line(stderr) or 'no message'}"
                    )
                data += piece
        line = data.split(b"\n", 1)[0].decode("ascii", "replace")
        fields = line.split()
        if len(fields) != 4 or fields[0] != "READY" or not fields[2].isdigit():
            raise CentralServiceError(f"central service said {_one_line(line)!r}, not READY")
        return fields[1], int(fields[2]), fields[3]

    def stop(self) -> None:
        """Terminate the service (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        proc, self._proc, self._address = self._proc, None, None
        if proc is not None:
            proc.stop()
        atexit.unregister(self.stop)

    # -- faults -------------------------------------------------------------------------

    def crash(self) -> None:
        """SIGKILL the server: every session it held is lost."""
        proc, self._proc, self._address = self._proc, None, None
        if proc is None:
            raise CentralServiceError("central service is not running (call start())")
        proc.kill()

    def restart(self) -> None:
        """Start a fresh server on the port the last one listened on."""
        if self._last_port == 0:
            raise CentralServiceError("central service was never started")
        self._port_to_bind = self._last_port
        try:
            self.start()
        finally:
            self._port_to_bind = 0

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered."""
        self._require()
        assert self._proc is not None
        self._proc.pause()

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._proc is not None:
            self._proc.resume()

    def __repr__(self) -> str:
        where = f"{self._address[0]}:{self._address[1]}" if self._address else "stopped"
        return f"<CentralService {where} timeout={self.timeout:g}>"


if __name__ == "__main__":
    raise SystemExit(main())
