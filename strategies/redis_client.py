"""What the Redis strategies share: a client node that turns each operation into Redis
commands and sends them on one connection, every ``pipeline`` operations (one round trip
per operation at depth 1), in a blocking and an asyncio version.

A strategy only says which commands an operation makes (a :class:`RedisCommands`). redis-py
opens and authenticates the connection (so TLS, AUTH, SELECT, RESP3 and URL parsing stay
redis-py's), and the hot path then runs on that connection's socket (or, asyncio, its
stream pair) directly: commands are packed into RESP by :class:`_Packer` (the encoding of
each repeated argument, and each repeated all-text command, is cached) and the replies are
parsed by a ``hiredis.Reader`` that turns error replies into redis-py's exceptions
(``ResponseError`` and its subclasses, as redis-py's own parser does). Measured here, going
through ``Connection.pack_commands``/``read_response`` cost ~1.7 us per command and ~5.7 us
per reply in Python, which capped a pipelined run at about a third of redis-benchmark's
rate; a bare ``Redis.incr`` call is slower still.

Every reply of a round trip is read even when one is an error reply, and the first error
reply is then raised, so the connection stays in step. A timeout (the URL's socket timeout,
``timeout``), a connection closed by the server or any other failure in the middle of a
round trip leaves the node unusable: that call raises (redis-py's ``TimeoutError`` or
``ConnectionError``), the connection is closed, and every later call raises
``ConnectionError``; make a new node. Lua scripts are loaded once per connection and called
with EVALSHA. The connection is opened inside the worker, from ``config.endpoint``; every
key is under the driver's namespace, which starts with ``countbench:<run-id>:``.
"""

from __future__ import annotations

import hashlib
import socket
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

from .base import AsyncClientNode, ClientNode, Consistency, ServiceStrategy
from .batching import AsyncBatchingClient, BatchingClient

if TYPE_CHECKING:
    import asyncio

Command = tuple[str | int | float, ...]

_RECV_SIZE = 65536
_CACHE_LIMIT = 4096  # entries per node in each packing cache (a bound, not a tuning knob)
_NOT_ENOUGH_DATA: Any = object()  # what hiredis's gets() returns when a reply is incomplete


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


class RedisCommands(Protocol):
    """The commands of each operation, appended to ``out``. The reply to the last command
    that ``count`` appends is the number of online users. ``scripts`` are the Lua sources
    its EVALSHA commands call (by :func:`sha1`)."""

    scripts: tuple[str, ...]

    def login(self, out: list[Command], ns: str, user: str, now: float) -> None: ...

    def logout(self, out: list[Command], ns: str, user: str, now: float) -> None: ...

    def heartbeat(self, out: list[Command], ns: str, user: str, now: float) -> None: ...

    def count(self, out: list[Command], ns: str, now: float) -> None: ...


def _count_reply(reply: Any) -> int:
    return int(reply or 0)


def _last_reply(replies: list[Any]) -> Any:
    for reply in replies:
        if isinstance(reply, Exception):  # an error reply, as redis-py's exception
            raise reply
    return replies[-1]


def _reader(conn: Any) -> Any:
    """A hiredis reader that parses replies as ``conn``'s own parser would: error replies
    become redis-py's exception objects (returned by ``gets()``, not raised), and text is
    decoded only if the URL asked for ``decode_responses``."""
    import hiredis
    from redis._parsers.base import BaseParser
    from redis.exceptions import InvalidResponse

    kwargs: dict[str, Any] = {
        "protocolError": InvalidResponse,
        "replyError": BaseParser.parse_error,
        "notEnoughData": _NOT_ENOUGH_DATA,
    }
    encoder = conn.encoder
    if encoder.decode_responses:
        kwargs["encoding"] = encoder.encoding
        kwargs["errors"] = encoder.encoding_errors
    return hiredis.Reader(**kwargs)


class _Packer:
    """RESP encoding of commands, byte for byte what redis-py's ``pack_command`` sends.

    Two bounded caches (emptied when full): whole commands made only of text (``("INCR",
    ns + "count")``), and the encoding of each text argument (key names, users, command
    names), so a command with one changing argument (a timestamp) costs one dict lookup
    per repeated argument.
    """

    __slots__ = ("_args", "_commands", "_encoder", "_encoding", "_errors")

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        self._encoding: str = encoder.encoding
        self._errors: str = encoder.encoding_errors
        self._commands: dict[Command, bytes] = {}
        self._args: dict[str, bytes] = {}

    def _text(self, arg: str) -> bytes:
        """``$<len>\\r\\n<bytes>\\r\\n`` for a text argument, cached."""
        piece = self._args.get(arg)
        if piece is None:
            data = arg.encode(self._encoding, self._errors)
            piece = b"$%d\r\n%b\r\n" % (len(data), data)
            if len(self._args) >= _CACHE_LIMIT:
                self._args.clear()  # mostly one-off values (timestamps): start again
            self._args[arg] = piece
        return piece

    def _other(self, arg: Any) -> bytes:
        """An int or float (``repr``, as redis-py), bytes, or redis-py's error for others."""
        kind = type(arg)
        if kind is int or kind is float:
            data = repr(arg).encode()
        else:
            data = bytes(self._encoder.encode(arg))  # bytes-like, or raises DataError
        return b"$%d\r\n%b\r\n" % (len(data), data)

    def pack(self, command: Command) -> bytes:
        try:
            packed = self._commands.get(command)
        except TypeError:  # an unhashable argument (a bytearray): not a text command
            packed = None
        if packed is not None:
            return packed
        args: tuple[Any, ...] = command
        name = args[0]
        if isinstance(name, str):  # "SCRIPT LOAD" is two words, as redis-py sends it
            words = name.split()
            if len(words) != 1:
                args = tuple(words) + args[1:]
        elif isinstance(name, bytes) and b" " in name:
            args = tuple(name.split()) + args[1:]
        text = True
        pieces = [b"*%d\r\n" % len(args)]
        for arg in args:
            if type(arg) is str:
                pieces.append(self._text(arg))
            else:
                text = False
                pieces.append(self._other(arg))
        packed = b"".join(pieces)
        if text:  # only str items, so 1 == 1.0 == True cannot make two commands collide
            if len(self._commands) >= _CACHE_LIMIT:
                self._commands.clear()
            self._commands[command] = packed
        return packed

    def pack_all(self, commands: list[Command]) -> bytes:
        return b"".join(map(self.pack, commands))


def _failed(exc: BaseException, doing: str) -> Exception:
    """The redis-py exception for a failure in the middle of a round trip."""
    from redis.exceptions import ConnectionError, RedisError, TimeoutError

    if isinstance(exc, RedisError):
        return exc
    if isinstance(exc, socket.timeout):  # the builtin TimeoutError (asyncio's too)
        return TimeoutError(f"Timeout {doing} socket")
    if isinstance(exc, OSError):
        return ConnectionError(f"Error while {doing} socket: {exc}")
    return ConnectionError(f"Error while {doing} socket: {type(exc).__name__}: {exc}")


def _unusable(first: BaseException) -> Exception:
    from redis.exceptions import ConnectionError

    return ConnectionError(
        f"this Redis connection failed earlier ({type(first).__name__}: {first}); "
        "make a new client node"
    )


def _parsed(reader: Any, replies: list[Any], count: int) -> bool:
    """Move the replies ``reader`` has parsed into ``replies``, up to ``count`` in all;
    whether more bytes are needed for the rest."""
    gets, append = reader.gets, replies.append
    left = count - len(replies)
    while left:
        reply = gets()
        if reply is _NOT_ENOUGH_DATA:
            return True
        append(reply)
        left -= 1
    return False


def _closed() -> Exception:
    from redis.exceptions import ConnectionError

    return ConnectionError("Connection closed by server.")


class _Conversation:
    """The sans-I/O half of a client node, shared by both shells: the commands queued
    since the last round trip (``ops`` operations' worth) and the failure that made the
    connection unusable."""

    def __init__(self, commands: RedisCommands, namespace: str, depth: int) -> None:
        self._commands, self._ns, self._depth = commands, namespace, depth
        self._queue: list[Command] = []
        self._ops = 0
        self._failure: BaseException | None = None

    def _take(self, packer: _Packer) -> tuple[bytes, int] | None:
        """The queued commands packed into one request, and how many replies it asks
        for; None when nothing is queued. Raises if the connection failed earlier."""
        queue, self._queue, self._ops = self._queue, [], 0
        if not queue:
            return None
        if self._failure is not None:
            raise _unusable(self._failure)
        return packer.pack_all(queue), len(queue)  # a DataError here leaves the node usable

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        """Record that a round trip failed (its replies are out of step now) and raise:
        redis-py's own error or a ``BaseException`` as it is, anything else as redis-py's."""
        self._failure = exc
        failure = _failed(exc, doing)
        if failure is exc or not isinstance(exc, Exception):
            raise exc
        raise failure from exc


class RedisClientNode(_Conversation, BatchingClient):
    """A worker's blocking connection; see the module docstring."""

    def __init__(
        self,
        url: str,
        commands: RedisCommands,
        namespace: str,
        depth: int,
        timeout: float = 10.0,
    ) -> None:
        import redis

        # redis-py's connection layer is only partly annotated: held as Any.
        self._pool: Any = redis.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 5.0)
        )
        super().__init__(commands, namespace, depth)
        try:
            conn: Any = cast(Any, self._pool.get_connection())  # connected, authenticated
            self._sock: socket.socket = conn._sock
            self._reader: Any = _reader(conn)
            self._packer = _Packer(conn.encoder)
            self._buffer = bytearray(_RECV_SIZE)
            if commands.scripts:
                self._queue = [("SCRIPT", "LOAD", script) for script in commands.scripts]
                self._exchange()
        except BaseException:
            self._pool.disconnect()
            raise

    def _read(self, count: int) -> list[Any]:
        """The next ``count`` replies, error replies included as exception objects."""
        reader, sock, buffer = self._reader, self._sock, self._buffer
        feed, recv_into = reader.feed, sock.recv_into
        replies: list[Any] = []
        while _parsed(reader, replies, count):
            size = recv_into(buffer)
            if not size:
                raise _closed()
            feed(buffer, 0, size)
        return replies

    def _exchange(self) -> Any:
        request = self._take(self._packer)
        if request is None:
            return None
        doing = "writing to"
        try:
            self._sock.sendall(request[0])
            doing = "reading from"
            replies = self._read(request[1])
        except BaseException as exc:
            self._pool.disconnect()
            self._fail(exc, doing)
        return _last_reply(replies)

    def _queued(self) -> None:
        self._ops += 1
        if self._ops >= self._depth:
            self._exchange()

    def login(self, user: str, now: float) -> None:
        self._commands.login(self._queue, self._ns, user, now)
        self._queued()

    def logout(self, user: str, now: float) -> None:
        self._commands.logout(self._queue, self._ns, user, now)
        self._queued()

    def heartbeat(self, user: str, now: float) -> None:
        self._commands.heartbeat(self._queue, self._ns, user, now)
        self._queued()

    def count(self, now: float) -> int:
        self._commands.count(self._queue, self._ns, now)
        return _count_reply(self._exchange())

    def write(self, kind: str, user: str, now: float) -> None:
        getattr(self._commands, kind)(self._queue, self._ns, user, now)
        self._queued()

    def flush(self) -> None:
        self._exchange()

    def disconnect(self) -> None:
        self._pool.disconnect()


class AsyncRedisClientNode(_Conversation, AsyncBatchingClient):
    """A worker's asyncio connection, opened by redis.asyncio, used through its stream
    pair; the same behaviour. Create it with ``await AsyncRedisClientNode.open(...)``."""

    def __init__(self, pool: Any, conn: Any, commands: RedisCommands, ns: str, depth: int) -> None:
        super().__init__(commands, ns, depth)
        self._pool, self._conn = pool, conn
        self._stream: asyncio.StreamReader = conn._reader
        self._writer: asyncio.StreamWriter = conn._writer
        self._reader: Any = _reader(conn)
        self._packer = _Packer(conn.encoder)
        timeout = conn.socket_timeout
        self._timeout: float | None = float(timeout) if timeout else None

    @classmethod
    async def open(
        cls,
        url: str,
        commands: RedisCommands,
        namespace: str,
        depth: int,
        timeout: float = 10.0,
    ) -> AsyncRedisClientNode:

        import redis.asyncio

        pool: Any = redis.asyncio.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 5.0)
        )
        try:
            conn = await pool.get_connection()  # connected, authenticated
            node = cls(pool, conn, commands, namespace, depth)
            if commands.scripts:
                node._queue = [("SCRIPT", "LOAD", script) for script in commands.scripts]
                await node._exchange()
        except BaseException:
            await pool.disconnect()
            raise
        return node

    async def _read(self, count: int) -> list[Any]:
        reader, read = self._reader, self._stream.read
        replies: list[Any] = []
        while _parsed(reader, replies, count):
            data = await read(_RECV_SIZE)
            if not data:
                raise _closed()
            reader.feed(data)
        return replies

    async def _round_trip(self, data: bytes, count: int) -> list[Any]:
        writer = self._writer
        writer.write(data)
        await writer.drain()
        return await self._read(count)

    async def _exchange(self) -> Any:
        import asyncio

        request = self._take(self._packer)
        if request is None:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                replies = await self._round_trip(*request)
        except BaseException as exc:
            await self._pool.disconnect()
            self._fail(exc, "talking on the")
        return _last_reply(replies)

    async def _queued(self) -> None:
        self._ops += 1
        if self._ops >= self._depth:
            await self._exchange()

    async def login(self, user: str, now: float) -> None:
        self._commands.login(self._queue, self._ns, user, now)
        await self._queued()

    async def logout(self, user: str, now: float) -> None:
        self._commands.logout(self._queue, self._ns, user, now)
        await self._queued()

    async def heartbeat(self, user: str, now: float) -> None:
        self._commands.heartbeat(self._queue, self._ns, user, now)
        await self._queued()

    async def count(self, now: float) -> int:
        self._commands.count(self._queue, self._ns, now)
        return _count_reply(await self._exchange())

    async def write(self, kind: str, user: str, now: float) -> None:
        getattr(self._commands, kind)(self._queue, self._ns, user, now)
        await self._queued()

    async def flush(self) -> None:
        await self._exchange()

    async def disconnect(self) -> None:
        await self._pool.disconnect()


class RedisStrategy(ServiceStrategy):
    """A strategy on one Redis: it says which commands each operation makes
    (:meth:`commands`); every worker's client sends them on its own connection.
    Consistency: strong (one server, each command atomic)."""

    consistency = Consistency.STRONG
    article_approach = "Redis"
    service = "redis"
    syncs = False  # a sync only flushes the queued writes

    @abstractmethod
    def commands(self) -> RedisCommands:
        """The commands of each operation, for one worker's client."""

    def client(self, namespace: str, worker: int) -> ClientNode:
        config = self.config
        return RedisClientNode(
            config.endpoint, self.commands(), namespace, config.pipeline, config.request_timeout
        )

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        config = self.config
        return await AsyncRedisClientNode.open(
            config.endpoint, self.commands(), namespace, config.pipeline, config.request_timeout
        )
