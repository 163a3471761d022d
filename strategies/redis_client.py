"""What the Redis strategies share: a client node that turns each operation into Redis
commands and sends them on one connection, every ``pipeline`` operations (one round trip
per operation at depth 1), in a blocking and an asyncio version.

A strategy only says which commands an operation makes (a :class:`RedisCommands`). The
client works on redis-py's connection layer (``Connection.send_packed_command`` and
``read_response``, with the hiredis parser when hiredis is installed) rather than on
``Redis``/``Pipeline`` objects: measured here, a bare ``Redis.incr`` call ran at about a
third of the rate of ``send_command`` + ``read_response`` on the same connection, and the
difference is client overhead, not Redis. Lua scripts are loaded once per connection and
called with EVALSHA. The connection is opened inside the worker, from ``config.endpoint``;
every key is under the driver's namespace, which starts with ``countbench:<run-id>:``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any, Protocol, cast

Command = tuple[str | int | float, ...]


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


@cache
def _error_reply() -> type[Exception]:
    """redis-py's error-reply exception (imported on first use: listing the strategies
    must not import redis)."""
    from redis.exceptions import ResponseError

    return ResponseError


def _reply(read: Any) -> Any:
    """One reply; an error reply is returned, not raised, so every reply gets read."""
    try:
        return read()
    except _error_reply() as exc:
        return exc


def _last_reply(replies: list[Any]) -> Any:
    for reply in replies:
        if isinstance(reply, _error_reply()):
            raise reply
    return replies[-1]


class RedisClientNode:
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
        self._conn: Any = cast(Any, self._pool.get_connection())
        self._commands, self._ns, self._depth = commands, namespace, depth
        self._queue: list[Command] = []
        self._ops = 0
        for script in commands.scripts:
            self._conn.send_command("SCRIPT", "LOAD", script)
            self._conn.read_response()

    def _exchange(self) -> Any:
        queue, self._queue, self._ops = self._queue, [], 0
        if not queue:
            return None
        conn = self._conn
        conn.send_packed_command(conn.pack_commands(queue))
        return _last_reply([_reply(conn.read_response) for _ in queue])

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

    def sync(self, now: float) -> None:
        self._exchange()

    def close(self) -> None:
        try:
            self._exchange()
        finally:
            self._pool.disconnect()


class AsyncRedisClientNode:
    """A worker's asyncio connection (redis.asyncio's connection layer); the same
    behaviour. Create it with ``await AsyncRedisClientNode.open(...)``."""

    def __init__(self, pool: Any, conn: Any, commands: RedisCommands, ns: str, depth: int) -> None:
        self._pool, self._conn = pool, conn
        self._commands, self._ns, self._depth = commands, ns, depth
        self._queue: list[Command] = []
        self._ops = 0

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
        conn = await pool.get_connection()
        for script in commands.scripts:
            await conn.send_command("SCRIPT", "LOAD", script)
            await conn.read_response()
        return cls(pool, conn, commands, namespace, depth)

    async def _exchange(self) -> Any:
        queue, self._queue, self._ops = self._queue, [], 0
        if not queue:
            return None
        conn = self._conn
        await conn.send_packed_command(conn.pack_commands(queue))
        replies = []
        for _ in queue:
            try:
                replies.append(await conn.read_response())
            except _error_reply() as exc:  # read every reply, or the connection desyncs
                replies.append(exc)
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

    async def sync(self, now: float) -> None:
        await self._exchange()

    async def close(self) -> None:
        try:
            await self._exchange()
        finally:
            await self._pool.disconnect()
