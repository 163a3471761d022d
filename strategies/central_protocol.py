"""The central service's line protocol, without a server: :class:`SessionRequests` answers
request lines with no I/O (``countbench.bench.servers.central`` serves it over TCP, and
``aggregate``'s nodes serve it beside their workers), and its two clients,
:class:`CentralClient` (blocking) and :class:`AsyncCentralClient` (asyncio).

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
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from .closing import Closing
from .errors import RunError
from .tracker import SessionTracker

if TYPE_CHECKING:
    import asyncio

MAX_LINE: Final = 4096
#: How many requests a client ``pipeline`` writes before reading their answers. Bounded so
#: that neither side can fill both socket buffers and wait on the other forever.
PIPELINE_BATCH: Final = 4096
#: How much a server reads from a connection at once.
CHUNK: Final = 256 * 1024

_OK: Final = b"+\n"
_KINDS: Final = {"login": "L", "logout": "O", "heartbeat": "H", "count": "C"}
_TOKEN: Final = re.compile(r"[!-~]+")  # printable ASCII, no whitespace


class CentralServiceError(RuntimeError, RunError):
    """The central service failed: it did not start, died, or refused a request."""


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


class Namespace:
    """One namespace's state. ``D`` replaces the tracker; connections keep this holder."""

    __slots__ = ("tracker",)

    def __init__(self, timeout: float) -> None:
        self.tracker = SessionTracker(timeout)


class Connection:
    """One connection's state: its namespace, and a request line not yet complete."""

    __slots__ = ("namespace", "skipping", "tail")

    def __init__(self) -> None:
        self.namespace: Namespace | None = None
        self.tail = b""
        self.skipping = False  # inside a line longer than MAX_LINE: dropped up to its newline


def _parse_now(field: bytes) -> float | None:
    try:
        now = float(field)
    except ValueError:
        return None
    return now if math.isfinite(now) else None


class SessionRequests:
    """The service's state (a session table per namespace) and its answers to request
    lines, without I/O: bytes in, bytes out. Not thread-safe (one event loop serves it)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.namespaces: dict[str, Namespace] = {}

    def namespace(self, name: str) -> Namespace:
        """The state of namespace ``name``, created empty on first use."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(self.timeout)
        return ns

    def feed(self, conn: Connection, chunk: bytes) -> bytes:
        """The answers to every request line that ``chunk`` completes on ``conn``, in order
        (the rest of the chunk waits for the next one)."""
        handle = self.handle
        lines = (conn.tail + chunk if conn.tail else chunk).split(b"\n")
        conn.tail = lines.pop()
        answers = []
        for line in lines:
            if conn.skipping:
                conn.skipping = False
                answers.append(_ERR_LONG)
            elif len(line) > MAX_LINE + 1:  # + 1 for a "\r"
                answers.append(_ERR_LONG)
            else:
                answers.append(handle(conn, line))
        if len(conn.tail) > MAX_LINE + 1:
            conn.tail, conn.skipping = b"", True
        return b"".join(answers)

    def handle(self, conn: Connection, line: bytes) -> bytes:
        """Answer one request line (without its newline)."""
        parts = line.split()
        if not parts:
            return _ERR_EMPTY
        if not line.isascii():
            return _ERR_ASCII
        op = parts[0]
        if op == b"L" or op == b"H" or op == b"O" or op == b"C":
            counting = op == b"C"
            if len(parts) != (2 if counting else 3):
                return _ERR_COUNT_ARGS if counting else _ERR_USER_ARGS
            ns = conn.namespace
            if ns is None:
                return _ERR_NO_NS
            now = _parse_now(parts[1])
            if now is None:
                return _ERR_NOW
            if counting:
                return b"%d\n" % ns.tracker.count(now)
            user = parts[2].decode("ascii")
            if op == b"L":
                ns.tracker.login(user, now)
            elif op == b"H":
                ns.tracker.heartbeat(user, now)
            else:
                ns.tracker.logout(user, now)
            return _OK
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
            conn.namespace = self.namespace(parts[1].decode("ascii"))
            return _OK
        return _ERR_UNKNOWN


class LockedSessionRequests(SessionRequests):
    """:class:`SessionRequests` whose every request takes ``lock``, for a table that other
    threads also update (a hosted node's workers)."""

    def __init__(self, timeout: float, lock: threading.Lock) -> None:
        super().__init__(timeout)
        self.lock = lock

    def handle(self, conn: Connection, line: bytes) -> bytes:
        with self.lock:
            return super().handle(conn, line)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


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


class CentralClient(Closing):
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
        import asyncio

        self.host, self.port, self.namespace, self.timeout = host, port, namespace, timeout
        self._reader = reader
        self._writer: asyncio.StreamWriter | None = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, host: str, port: int, namespace: str, timeout: float = 5.0
    ) -> AsyncCentralClient:
        import asyncio

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
        import asyncio

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
