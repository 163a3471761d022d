"""``central``: the central counter service, one server process that holds every session.

This is the "central counter service" strategy's server: one process keeps the
authoritative session table (a :class:`~countbench.strategies.session.SessionTracker` per
namespace) and every login, logout, heartbeat and read is a network hop to it. The module
holds the server (run it with ``python -m countbench.bench.servers.central``), a launcher
that starts and stops it (:class:`CentralService`) and two clients, one blocking
(:class:`CentralClient`) and one for asyncio (:class:`AsyncCentralClient`).

Protocol
--------
TCP, newline-terminated ASCII lines (a trailing ``\\r`` is tolerated). Fields are separated
by whitespace. A connection first chooses its namespace; each namespace is its own
``SessionTracker``, so benchmark runs sharing one service never see each other's users.

============================  ======================================================
request                       answer
============================  ======================================================
``N <namespace>``             ``+`` (may be sent again to switch namespace)
``L <now> <user>``            ``+`` (login)
``O <now> <user>``            ``+`` (logout)
``H <now> <user>``            ``+`` (heartbeat)
``C <now>``                   the count, in decimal (expired sessions are dropped first)
``P``                         ``+`` (ping; needs no namespace)
``D``                         ``+`` (drop the namespace's state: it starts empty again)
============================  ======================================================

``now`` is a finite float (virtual seconds on the caller's clock); ``user`` and
``namespace`` are non-empty and contain no whitespace. The semantics are those of
``SessionTracker`` with the server's ``--timeout``. A malformed request (unknown verb,
wrong number of fields, a ``now`` that is not a finite float, non-ASCII bytes, a request
other than ``N``/``P`` before any ``N``, a line longer than :data:`MAX_LINE` bytes) is
answered ``-ERR <reason>`` and the connection stays usable.

Requests on one connection are answered in order, one answer line per request line, so a
client may pipeline: write many lines, then read as many answers. The server reads a
connection in chunks, handles every complete line in the chunk and writes all their answers
with one ``write``, so a pipelined batch costs a few system calls, not one per request.
Connections are served concurrently by one asyncio event loop; the service holds all state
in that one thread, so every request is atomic and no update is ever lost.

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
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Final, Self

from ...strategies.session import SessionTracker

__all__ = [
    "MAX_LINE",
    "PIPELINE_BATCH",
    "AsyncCentralClient",
    "CentralClient",
    "CentralService",
    "CentralServiceError",
    "fan_out_count",
    "main",
]

#: The module ``CentralService`` runs with ``python -m``.
MODULE: Final = "countbench.bench.servers.central"
#: The longest request line the server accepts, in bytes (without the newline).
MAX_LINE: Final = 4096
#: How many requests a client ``pipeline`` writes before reading their answers. Bounded so
#: that neither side can fill both socket buffers and wait on the other forever.
PIPELINE_BATCH: Final = 4096
#: How much the server reads from a connection at once.
_CHUNK: Final = 256 * 1024

_OK: Final = b"+\n"
_KINDS: Final = {"login": "L", "logout": "O", "heartbeat": "H", "count": "C"}
_TOKEN: Final = re.compile(r"[!-~]+")  # printable ASCII, no whitespace


class CentralServiceError(RuntimeError):
    """The central service failed: it did not start, died, or refused a request."""


# --------------------------------------------------------------------------- server


def _err(reason: str) -> bytes:
    return b"-ERR " + reason.encode("ascii") + b"\n"


_ERR_EMPTY: Final = _err("empty request")
_ERR_ASCII: Final = _err("request is not ASCII")
_ERR_NOW: Final = _err("<now> must be a finite float")
_ERR_NO_NS: Final = _err("no namespace: send N <namespace> first")
_ERR_LONG: Final = _err(f"request longer than {MAX_LINE} bytes")
_ERR_UNKNOWN: Final = _err("unknown request (expected N, L, O, H, C, P or D)")
_ERR_USER_ARGS: Final = _err("L, O and H take <now> <user>")
_ERR_COUNT_ARGS: Final = _err("C takes <now>")
_ERR_NS_ARGS: Final = _err("N takes <namespace>")
_ERR_NO_ARGS: Final = _err("P and D take no argument")


class _Namespace:
    """One namespace's state. ``D`` replaces the tracker; connections keep this holder."""

    __slots__ = ("tracker",)

    def __init__(self, timeout: float) -> None:
        self.tracker = SessionTracker(timeout)


class _Connection:
    __slots__ = ("namespace",)

    def __init__(self) -> None:
        self.namespace: _Namespace | None = None


def _parse_now(field: bytes) -> float | None:
    try:
        now = float(field)
    except ValueError:
        return None
    return now if math.isfinite(now) else None


class _Server:
    """The service's state and request handling (one event loop, so no locks)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.namespaces: dict[str, _Namespace] = {}
        self.writers: set[asyncio.StreamWriter] = set()

    def handle(self, conn: _Connection, line: bytes) -> bytes:
        """Answer one request line (without its newline)."""
        parts = line.split()
        if not parts:
            return _ERR_EMPTY
        if not line.isascii():
            return _ERR_ASCII
        op = parts[0]
        if op == b"L" or op == b"H" or op == b"O":
            if len(parts) != 3:
                return _ERR_USER_ARGS
            ns = conn.namespace
            if ns is None:
                return _ERR_NO_NS
            now = _parse_now(parts[1])
            if now is None:
                return _ERR_NOW
            user = parts[2].decode("ascii")
            if op == b"L":
                ns.tracker.login(user, now)
            elif op == b"H":
                ns.tracker.heartbeat(user, now)
            else:
                ns.tracker.logout(user, now)
            return _OK
        if op == b"C":
            if len(parts) != 2:
                return _ERR_COUNT_ARGS
            ns = conn.namespace
            if ns is None:
                return _ERR_NO_NS
            now = _parse_now(parts[1])
            if now is None:
                return _ERR_NOW
            return b"%d\n" % ns.tracker.count(now)
        if op == b"P" or op == b"D":
            if len(parts) != 1:
                return _ERR_NO_ARGS
            if op == b"D":
                ns = conn.namespace
                if ns is None:
                    return _ERR_NO_NS
                ns.tracker = SessionTracker(self.timeout)
            return _OK
        if op == b"N":
            if len(parts) != 2:
                return _ERR_NS_ARGS
            name = parts[1].decode("ascii")
            ns = self.namespaces.get(name)
            if ns is None:
                ns = self.namespaces[name] = _Namespace(self.timeout)
            conn.namespace = ns
            return _OK
        return _ERR_UNKNOWN

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection: read chunks, answer every complete line, one write each."""
        self.writers.add(writer)
        conn = _Connection()
        handle = self.handle
        tail = b""
        skipping = False  # inside a line longer than MAX_LINE: drop it up to its newline
        try:
            while True:
                chunk = await reader.read(_CHUNK)
                if not chunk:
                    break
                lines = (tail + chunk if tail else chunk).split(b"\n")
                tail = lines.pop()
                answers = []
                for line in lines:
                    if skipping:
                        skipping = False
                        answers.append(_ERR_LONG)
                    elif len(line) > MAX_LINE + 1:  # + 1 for a "\r"
                        answers.append(_ERR_LONG)
                    else:
                        answers.append(handle(conn, line))
                if len(tail) > MAX_LINE + 1:
                    tail, skipping = b"", True
                if answers:
                    writer.write(b"".join(answers))
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
    state = _Server(timeout)
    server = await asyncio.start_server(state.serve_connection, host, port, limit=_CHUNK)
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


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _last_line(file: IO[bytes]) -> str:
    file.seek(0)
    lines = file.read().decode("utf-8", "replace").strip().splitlines()
    return _one_line(lines[-1]) if lines else ""


class CentralService:
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
        self._proc: subprocess.Popen[bytes] | None = None
        self._address: tuple[str, int, str] | None = None
        self._port_to_bind = 0
        self._last_port = 0
        self._paused = False

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
        return self._address is not None and self._proc is not None and self._proc.poll() is None

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
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    # Its own process group: a terminal's Ctrl-C goes to countbench, which
                    # stops its workers first and this server last, not all at once.
                    process_group=0,
                )
            except OSError as exc:
                raise CentralServiceError(f"cannot run {sys.executable}: {exc}") from None
            self._proc = proc
            atexit.register(self.stop)
            try:
                self._address = self._read_ready(proc, stderr)
            except CentralServiceError:
                self.stop()
                raise
        self._last_port = self._address[1]
        return self

    def _read_ready(self, proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> tuple[str, int, str]:
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
                    proc.wait()
                    raise CentralServiceError(
                        f"central service exited with status {proc.returncode} before "
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
            if proc.poll() is None:
                if self._paused:
                    proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                    self._paused = False
                proc.terminate()
                try:
                    proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        atexit.unregister(self.stop)

    # -- faults -------------------------------------------------------------------------

    def crash(self) -> None:
        """SIGKILL the server: every session it held is lost."""
        proc, self._proc, self._address = self._proc, None, None
        if proc is None:
            raise CentralServiceError("central service is not running (call start())")
        self._paused = False
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

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
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._proc is not None and self._paused:
            self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self._address[0]}:{self._address[1]}" if self._address else "stopped"
        return f"<CentralService {where} timeout={self.timeout:g}>"


# --------------------------------------------------------------------------- clients


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{what} must be non-empty printable ASCII without spaces: {value!r}")
    return value


def _time(now: float) -> str:
    now = float(now)
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite float, not {now!r}")
    return repr(now)


def _request(kind: str, user: str, now: float) -> bytes:
    verb = _KINDS.get(kind)
    if verb is None:
        raise ValueError(f"unknown request kind {kind!r} (expected one of {sorted(_KINDS)})")
    if verb == "C":
        return f"C {_time(now)}\n".encode("ascii")
    return f"{verb} {_time(now)} {_token(user, 'user')}\n".encode("ascii")


def _ok(answer: str) -> None:
    if answer != "+":
        raise CentralServiceError(f"central service refused the request: {answer}")


def _int(answer: str) -> int:
    try:
        return int(answer)
    except ValueError:
        raise CentralServiceError(f"central service answered {answer!r}, not a count") from None


class CentralClient:
    """A blocking client on one TCP connection to the central service.

    Connects in the constructor and selects ``namespace``. Each call is one round trip;
    ``pipeline`` sends many requests per round trip. A refused request (``-ERR``) raises
    :class:`CentralServiceError`; so does a dead, closed or silent (``timeout`` seconds)
    server, after which the client is closed. Bad arguments (a user with whitespace, a
    non-finite ``now``) raise ``ValueError`` before anything is sent. Calls from several
    threads are serialised by a lock (give each thread its own client for concurrency).
    """

    def __init__(self, host: str, port: int, namespace: str, timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self.namespace = _token(namespace, "namespace")
        self._timeout = timeout
        self._lock = threading.Lock()
        try:
            self._sock: socket.socket | None = socket.create_connection(
                (host, port), timeout=timeout
            )
        except OSError as exc:
            raise CentralServiceError(
                f"cannot connect to the central service at {host}:{port}: {exc}"
            ) from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._sock.makefile("rb")
        _ok(self._call(f"N {self.namespace}\n".encode("ascii")))

    def _fail(self, why: object) -> CentralServiceError:
        self.close()
        return CentralServiceError(
            f"lost the central service at {self.host}:{self.port}: {_one_line(str(why))}"
        )

    def _exchange(self, data: bytes, answers: int) -> list[str]:
        """Send ``data`` (``answers`` request lines) and read that many answers."""
        sock = self._sock
        if sock is None:
            raise CentralServiceError("central client is closed")
        try:
            sock.sendall(data)
            lines = [self._file.readline() for _ in range(answers)]
        except OSError as exc:  # ConnectionError, TimeoutError, ...
            raise self._fail(exc) from None
        if not lines[-1].endswith(b"\n"):
            raise self._fail("connection closed by the server")
        return [line[:-1].decode("ascii", "replace") for line in lines]

    def _call(self, data: bytes) -> str:
        with self._lock:
            return self._exchange(data, 1)[0]

    def login(self, user: str, now: float) -> None:
        _ok(self._call(f"L {_time(now)} {_token(user, 'user')}\n".encode("ascii")))

    def logout(self, user: str, now: float) -> None:
        _ok(self._call(f"O {_time(now)} {_token(user, 'user')}\n".encode("ascii")))

    def heartbeat(self, user: str, now: float) -> None:
        _ok(self._call(f"H {_time(now)} {_token(user, 'user')}\n".encode("ascii")))

    def count(self, now: float) -> int:
        return _int(self._call(f"C {_time(now)}\n".encode("ascii")))

    def ping(self) -> None:
        _ok(self._call(b"P\n"))

    def drop(self) -> None:
        """Forget every session of this client's namespace (for every client in it)."""
        _ok(self._call(b"D\n"))

    def send_count(self, now: float) -> bool:
        """First half of a fan-out read (see :func:`fan_out_count`): send ``C now`` and
        return at once; False if the connection is gone."""
        sock = self._sock
        if sock is None:
            return False
        try:
            sock.sendall(f"C {_time(now)}\n".encode("ascii"))
        except OSError:
            self.close()
            return False
        return True

    def receive_count(self, deadline: float) -> int | None:
        """Second half: the count, or None if it has not come by ``deadline``
        (``time.monotonic()``). The client is then closed: a late answer would be read as
        the answer to its next request."""
        sock = self._sock
        if sock is None:
            return None
        try:
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
            line = self._file.readline()
            sock.settimeout(self._timeout)
            if not line.endswith(b"\n"):
                raise ConnectionError("connection closed by the server")
            return _int(line[:-1].decode("ascii", "replace"))
        except (OSError, CentralServiceError):
            self.close()
            return None

    def pipeline(self, requests: Sequence[tuple[str, str, float]]) -> list[str]:
        """Send ``(kind, user, now)`` requests with few writes; return the answers in order.

        ``kind`` is ``login``, ``logout``, ``heartbeat`` or ``count`` (whose ``user`` is
        ignored). Answers are returned as the server sent them, without the newline: ``+``,
        a decimal count, or ``-ERR ...`` (not raised, since the other requests took
        effect). Requests go in batches of :data:`PIPELINE_BATCH`, each one write.
        """
        encoded = [_request(kind, user, now) for kind, user, now in requests]
        answers: list[str] = []
        with self._lock:
            for start in range(0, len(encoded), PIPELINE_BATCH):
                batch = encoded[start : start + PIPELINE_BATCH]
                answers += self._exchange(b"".join(batch), len(batch))
        return answers

    def close(self) -> None:
        """Close the connection (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            with contextlib.suppress(OSError):
                sock.close()

    @property
    def closed(self) -> bool:
        return self._sock is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def fan_out_count(clients: Sequence[CentralClient], now: float, timeout: float) -> list[int | None]:
    """Ask every client's server for its count at once (all requests are sent before any
    answer is read) and collect the answers until ``timeout`` seconds have passed. A server
    that has not answered by then, or whose connection is gone, gets None."""
    deadline = time.monotonic() + timeout
    sent = [client.send_count(now) for client in clients]
    return [
        client.receive_count(deadline) if ok else None
        for client, ok in zip(clients, sent, strict=True)
    ]


class AsyncCentralClient:
    """The asyncio twin of :class:`CentralClient`, on asyncio streams.

    Create it with ``await AsyncCentralClient.open(host, port, namespace)``. Errors are
    those of :class:`CentralClient`. Concurrent calls from several tasks are serialised
    by an ``asyncio.Lock`` (give each task its own client for concurrency).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        port: int,
        namespace: str,
        timeout: float,
    ) -> None:
        self.host, self.port, self.namespace, self.timeout = host, port, namespace, timeout
        self._reader = reader
        self._writer: asyncio.StreamWriter | None = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, host: str, port: int, namespace: str, timeout: float = 5.0
    ) -> AsyncCentralClient:
        _token(namespace, "namespace")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            raise CentralServiceError(
                f"cannot connect to the central service at {host}:{port}: "
                f"{_one_line(str(exc)) or type(exc).__name__}"
            ) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(reader, writer, host=host, port=port, namespace=namespace, timeout=timeout)
        _ok(await client._call(f"N {namespace}\n".encode("ascii")))
        return client

    def _fail(self, why: object) -> CentralServiceError:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        return CentralServiceError(
            f"lost the central service at {self.host}:{self.port}: {_one_line(str(why))}"
        )

    async def _exchange(self, data: bytes, answers: int) -> list[str]:
        writer = self._writer
        if writer is None:
            raise CentralServiceError("central client is closed")
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(data)
                # Read before draining: the answers must flow while the requests do.
                lines = [await self._reader.readline() for _ in range(answers)]
                await writer.drain()
        except TimeoutError:
            raise self._fail(f"no answer within {self.timeout:g} s") from None
        except OSError as exc:  # ConnectionError, ...
            raise self._fail(exc) from None
        if not lines[-1].endswith(b"\n"):
            raise self._fail("connection closed by the server")
        return [line[:-1].decode("ascii", "replace") for line in lines]

    async def _call(self, data: bytes) -> str:
        async with self._lock:
            return (await self._exchange(data, 1))[0]

    async def login(self, user: str, now: float) -> None:
        _ok(await self._call(f"L {_time(now)} {_token(user, 'user')}\n".encode("ascii")))

    async def logout(self, user: str, now: float) -> None:
        _ok(await self._call(f"O {_time(now)} {_token(user, 'user')}\n".encode("ascii")))

    async def heartbeat(self, user: str, now: float) -> None:
        _ok(await self._call(f"H {_time(now)} {_token(user, 'user')}\n".encode("ascii")))

    async def count(self, now: float) -> int:
        return _int(await self._call(f"C {_time(now)}\n".encode("ascii")))

    async def ping(self) -> None:
        _ok(await self._call(b"P\n"))

    async def drop(self) -> None:
        """Forget every session of this client's namespace (for every client in it)."""
        _ok(await self._call(b"D\n"))

    async def pipeline(self, requests: Sequence[tuple[str, str, float]]) -> list[str]:
        """As :meth:`CentralClient.pipeline`."""
        encoded = [_request(kind, user, now) for kind, user, now in requests]
        answers: list[str] = []
        async with self._lock:
            for start in range(0, len(encoded), PIPELINE_BATCH):
                batch = encoded[start : start + PIPELINE_BATCH]
                answers += await self._exchange(b"".join(batch), len(batch))
        return answers

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    @property
    def closed(self) -> bool:
        return self._writer is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


if __name__ == "__main__":
    raise SystemExit(main())
