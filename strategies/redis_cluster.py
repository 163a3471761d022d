"""``redis-cluster``: the ``redis-zset`` design sharded over a Redis Cluster.

Design. Users are hashed (CRC-32 of the user id, the same in every process) into ``S``
shards, ``S = SHARDS_PER_MASTER x masters`` (4 per master: 12 on the 3-master cluster
countbench starts). Shard ``i`` is one sorted set scored by last-seen time, exactly as in
``redis-zset`` (login ZADD GT, logout ZREM, heartbeat the script that renews a live user
and drops an expired one), under the key ``<namespace>{<tag_i>}online``. The hash tag
``{tag_i}`` pins each shard to one slot, and the tags are chosen so that shard ``i``'s slot
falls in the ``i``-th of ``S`` equal slices of the 16384 slots: on a cluster whose masters
own equal contiguous slot ranges (the one countbench starts) every master holds exactly
``S / masters`` shards, whatever the hash function does. A read is a scatter-gather: the
trim-and-count script (ZREMRANGEBYSCORE of entries older than the timeout, then ZCARD,
atomic per shard) on every shard key, pipelined per master (all of a master's shards in
one round trip), sent to every master before any answer is read, and the answers summed.

Routing is done here, not by redis-py's ``RedisCluster``: the client reads CLUSTER SLOTS
once when it opens (from ``config.endpoint``, any node of the cluster; credentials and TLS
from that URL apply to every node) and keeps one connection per master, on redis-py's
connection layer like :mod:`.redis_client` (and for the same reason: per-call overhead).
``config.pipeline`` operations are buffered per master and flushed together (one round
trip per master that has commands); ``config.request_timeout`` is every socket's timeout.
The slot map is not refreshed: countbench's cluster has no replicas and never reshards; a
MOVED/ASK reply (a user's cluster being resharded or failing over) is an error.

Consistency (claimed: eventual). Each shard is strong: one master, each operation atomic,
exactly as ``redis-zset``. The sum is not: the shards are read at slightly different
moments, so a read is not a snapshot across shards and, while writes go on, it can return
a total that was never true at any instant (a logout counted on one shard, a later login
on another). Once writes stop, every read is exact.

A master down. Reads and writes on its slots fail (the other masters keep serving theirs:
countbench's cluster runs with ``cluster-require-full-coverage no``; with the Redis default
the whole cluster refuses commands once the dead master is marked failed). A write routed
to it raises :class:`ClusterShardUnavailable` (its effect unknown, as for any timeout). A
read **fails** rather than return a partial sum: it raises :class:`ClusterReadIncomplete`
saying how many shards did not answer, never silently under-counts. The connection to the
dead master is reopened (and the scripts reloaded) at the next operation that needs it.

Why not every user in one hash-tagged key: that is ``redis-zset`` on whichever master owns
the one slot; the other masters would hold nothing and add no capacity, and losing that
master loses every user. Sharding spreads memory and CPU over the masters (which pays only
when they have cores of their own) and bounds what one dead master takes with it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from .base import AsyncClientNode, ClientNode, Consistency, ServiceStrategy, StrategyConfig
from .batching import AsyncBatchingClient, BatchingClient
from .redis_client import Command
from .redis_zset import COUNT, COUNT_SHA, HEARTBEAT, HEARTBEAT_SHA
from .spec import SESSIONS

if TYPE_CHECKING:
    pass

SLOTS = 16384
#: Shards per master: enough that each master holds several shard keys.
SHARDS_PER_MASTER = 4


class ClusterShardUnavailable(ConnectionError):
    """A master of the cluster did not answer (down, refused, timed out) or refused the
    commands for its slots; ``str`` is one line."""


class ClusterReadIncomplete(ClusterShardUnavailable):
    """A read that could not reach every shard: it fails instead of under-counting."""


class ClusterTopologyError(ConnectionError):
    """The endpoint is not a usable Redis Cluster node (an unusable server, like a refused
    connection, for the drivers); ``str`` is one line."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def parse_cluster_slots(
    reply: Any, default_host: str = "127.0.0.1"
) -> list[tuple[int, int, str, int]]:
    """CLUSTER SLOTS -> [(first slot, last slot, master host, master port)], from the raw
    RESP reply (a list) or redis-py's parsed form (a dict keyed by (first, last)). An empty
    host (the node does not know its own address) is ``default_host``."""
    ranges: list[tuple[int, int, str, int]] = []
    if isinstance(reply, dict):
        for (low, high), entry in reply.items():
            host, port = entry["primary"][0], entry["primary"][1]
            ranges.append((int(low), int(high), _text(host) or default_host, int(port)))
    else:
        for entry in reply or []:
            low, high, primary = entry[0], entry[1], entry[2]
            host = _text(primary[0])
            if host in ("", "?"):
                host = default_host
            ranges.append((int(low), int(high), host, int(primary[1])))
    return sorted(ranges)


def _key_slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


@cache
def shard_tags(shards: int) -> tuple[str, ...]:
    """The hash tag of each of ``shards`` shards: tag ``i`` hashes into the ``i``-th of
    ``shards`` equal slices of the slot space (first match of ``s<i>.<j>``, j = 0, 1...)."""
    tags = []
    for i in range(shards):
        low, high = i * SLOTS // shards, (i + 1) * SLOTS // shards
        j = 0
        while not low <= _key_slot(f"s{i}.{j}") < high:
            j += 1
        tags.append(f"s{i}.{j}")
    return tuple(tags)


def user_shard(user: str, shards: int) -> int:
    """A user's shard: CRC-32 of the id (stable across processes, unlike ``hash``)."""
    return zlib.crc32(user.encode()) % shards


class ClusterLayout:
    """Where every shard lives: the masters (from CLUSTER SLOTS), the shard keys of one
    namespace and the master of each. No I/O."""

    def __init__(
        self,
        ranges: Sequence[tuple[int, int, str, int]],
        namespace: str,
        shards_per_master: int = SHARDS_PER_MASTER,
    ) -> None:
        if "{" in namespace or "}" in namespace:
            raise ClusterTopologyError(
                f"namespace {namespace!r} contains a brace: it would change the hash tag"
            )
        self.masters: list[tuple[str, int]] = sorted({(h, p) for _, _, h, p in ranges})
        if not self.masters:
            raise ClusterTopologyError("the cluster has no master with slots (CLUSTER SLOTS)")
        owner = [-1] * SLOTS
        for low, high, host, port in ranges:
            index = self.masters.index((host, port))
            for slot in range(low, high + 1):
                owner[slot] = index
        self.shards = shards_per_master * len(self.masters)
        self.keys = [f"{namespace}{{{tag}}}online" for tag in shard_tags(self.shards)]
        self.key_master = [owner[_key_slot(key)] for key in self.keys]
        if -1 in self.key_master:
            missing = self.keys[self.key_master.index(-1)]
            raise ClusterTopologyError(
                f"slot {_key_slot(missing)} has no master: the cluster does not cover every slot"
            )
        #: The shards of each master, in order.
        self.by_master: list[list[int]] = [
            [s for s in range(self.shards) if self.key_master[s] == m]
            for m in range(len(self.masters))
        ]

    def address(self, master: int) -> str:
        host, port = self.masters[master]
        return f"{host}:{port}"


class _Commands:
    """The commands of each operation, for one shard key (as ``redis-zset``)."""

    scripts = (HEARTBEAT, COUNT)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.limit = repr(timeout)

    def login(self, key: str, user: str, now: float) -> Command:
        return ("ZADD", key, "GT", repr(now), user)

    def logout(self, key: str, user: str, now: float) -> Command:
        return ("ZREM", key, user)

    def heartbeat(self, key: str, user: str, now: float) -> Command:
        return ("EVALSHA", HEARTBEAT_SHA, 1, key, user, repr(now), self.limit)

    def count(self, key: str, now: float) -> Command:
        return ("EVALSHA", COUNT_SHA, 1, key, repr(now - self.timeout))


def _check_url(url: str) -> tuple[str, Any]:
    """The seed host and the (redis-py) parsed URL; ClusterTopologyError if unusable."""
    if not url:
        raise ClusterTopologyError(
            "redis-cluster needs a Redis Cluster endpoint (none was given for this run)"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ClusterTopologyError("redis-cluster: unparseable Redis URL") from exc
    if parts.scheme not in ("redis", "rediss"):
        raise ClusterTopologyError(
            f"redis-cluster needs a redis:// or rediss:// URL (a cluster is reached over TCP), "
            f"not {parts.scheme}://"
        )
    return parts.hostname or "127.0.0.1", parts


def _is_error(reply: Any) -> bool:
    return isinstance(reply, _error_reply())


def _connection_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OSError)


class _Batch:
    """The commands queued for each master, and whether a read is among them."""

    def __init__(self, masters: int) -> None:
        self.queues: list[list[Command]] = [[] for _ in range(masters)]
        self.ops = 0
        self.counting = False

    def take(self) -> tuple[list[list[Command]], bool]:
        queues, counting = self.queues, self.counting
        self.queues = [[] for _ in queues]
        self.ops, self.counting = 0, False
        return queues, counting


def _outcome(
    layout: ClusterLayout,
    queues: list[list[Command]],
    replies: list[list[Any] | None],
    failures: dict[int, str],
    counting: bool,
) -> int:
    """Raise for any failed master or error reply; the count (sum of each master's last
    replies) when ``counting``."""
    errors = [
        (m, reply)
        for m, node_replies in enumerate(replies)
        for reply in node_replies or []
        if _is_error(reply)
    ]
    for m, reply in errors:
        text = _one_line(str(reply))
        if text.startswith(("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")):
            failures.setdefault(m, f"cluster refused the command ({text})")
    if failures:
        where = "; ".join(
            f"master {layout.address(m)}: {why}" for m, why in sorted(failures.items())
        )
        if counting:
            missing = sum(len(layout.by_master[m]) for m in failures)
            raise ClusterReadIncomplete(
                f"redis-cluster read failed: {missing} of {layout.shards} shards did not "
                f"answer ({where}); no partial sum is returned"
            )
        raise ClusterShardUnavailable(f"redis-cluster: a master did not answer ({where})")
    if errors:
        raise errors[0][1]
    if not counting:
        return 0
    total = 0
    for m, node_replies in enumerate(replies):
        shards = len(layout.by_master[m])
        if shards and node_replies is not None and queues[m]:
            total += sum(int(r or 0) for r in node_replies[-shards:])
    return total


def _seed_pool(redis_module: Any, config: StrategyConfig) -> tuple[str, Any]:
    """The seed node's host, and a connection pool (of redis-py's blocking or asyncio
    ``redis_module``) for ``config.endpoint`` with its request timeout."""
    seed_host, _ = _check_url(config.endpoint)
    timeout = config.request_timeout
    pool = redis_module.ConnectionPool.from_url(
        config.endpoint, socket_timeout=timeout, socket_connect_timeout=min(timeout, 5.0)
    )
    return seed_host, pool


def _why(exc: BaseException) -> str:
    return _one_line(str(exc)) or type(exc).__name__


@contextmanager
def _reading_cluster_slots() -> Iterator[None]:
    """Map a failed CLUSTER SLOTS (blocking or asyncio) to this module's errors."""
    import redis.exceptions

    try:
        yield
    except redis.exceptions.ResponseError as exc:
        raise ClusterTopologyError(
            f"redis-cluster: the endpoint is not a Redis Cluster node ({_why(exc)})"
        ) from exc
    except redis.exceptions.RedisError as exc:
        raise ClusterShardUnavailable(
            f"redis-cluster: cannot read CLUSTER SLOTS from the endpoint ({_why(exc)})"
        ) from exc


def _silent_master(layout: ClusterLayout, m: int, exc: BaseException) -> ClusterShardUnavailable:
    return ClusterShardUnavailable(
        f"redis-cluster: master {layout.address(m)} did not answer ({_why(exc)})"
    )


class RedisClusterClientNode(BatchingClient):
    """A worker's blocking client: one connection per master (see the module docstring)."""

    def __init__(
        self, config: StrategyConfig, namespace: str, shards_per_master: int = SHARDS_PER_MASTER
    ) -> None:
        import redis

        seed_host, pool = _seed_pool(redis, config)
        self._conn_class: Any = pool.connection_class
        self._conn_kwargs: dict[str, Any] = dict(pool.connection_kwargs)
        seed: Any = self._conn_class(**self._conn_kwargs)
        try:
            with _reading_cluster_slots():
                seed.send_command("CLUSTER", "SLOTS")
                reply = seed.read_response()
        finally:
            seed.disconnect()
        self.layout = ClusterLayout(
            parse_cluster_slots(reply, seed_host), namespace, shards_per_master
        )
        self._commands = _Commands(config.session_timeout)
        self._depth = config.pipeline
        self._conns: list[Any] = [
            self._conn_class(**{**self._conn_kwargs, "host": host, "port": port})
            for host, port in self.layout.masters
        ]
        self._ready = [False] * len(self._conns)
        self._batch = _Batch(len(self._conns))
        for m in range(len(self._conns)):  # connect and load the scripts everywhere now
            try:
                self._prepare(m)
            except _connection_errors() as exc:
                self.disconnect()
                raise _silent_master(self.layout, m, exc) from exc

    def _prepare(self, m: int) -> None:
        """(Re)connect to master ``m`` and load the scripts, if not done since it failed."""
        if self._ready[m]:
            return
        conn = self._conns[m]
        for script in self._commands.scripts:
            conn.send_command("SCRIPT", "LOAD", script)
            conn.read_response()
        self._ready[m] = True

    def _exchange(self) -> int:
        queues, counting = self._batch.take()
        replies: list[list[Any] | None] = [None] * len(queues)
        failures: dict[int, str] = {}
        sent = []
        for m, queue in enumerate(queues):  # send to every master before reading any
            if not queue:
                continue
            conn = self._conns[m]
            try:
                self._prepare(m)
                conn.send_packed_command(conn.pack_commands(queue))
                sent.append(m)
            except _connection_errors() as exc:
                self._failed(m, exc, failures)
        for m in sent:
            conn = self._conns[m]
            node_replies: list[Any] = []
            try:
                for _ in queues[m]:
                    try:
                        node_replies.append(conn.read_response())
                    except _error_reply() as exc:  # read every reply, or the stream desyncs
                        node_replies.append(exc)
                replies[m] = node_replies
            except _connection_errors() as exc:
                self._failed(m, exc, failures)
        return _outcome(self.layout, queues, replies, failures, counting)

    def _failed(self, m: int, exc: BaseException, failures: dict[int, str]) -> None:
        self._ready[m] = False
        self._conns[m].disconnect()
        failures[m] = _why(exc)

    def _queued(self) -> None:
        self._batch.ops += 1
        if self._batch.ops >= self._depth:
            self._exchange()

    def _write(self, user: str, command: Command) -> None:
        self._batch.queues[self.layout.key_master[user_shard(user, self.layout.shards)]].append(
            command
        )
        self._queued()

    def _key(self, user: str) -> str:
        return self.layout.keys[user_shard(user, self.layout.shards)]

    def write(self, kind: str, user: str, now: float) -> None:
        self._write(user, getattr(self._commands, kind)(self._key(user), user, now))

    def count(self, now: float) -> int:
        for shard, key in enumerate(self.layout.keys):
            self._batch.queues[self.layout.key_master[shard]].append(self._commands.count(key, now))
        self._batch.counting = True
        return self._exchange()

    def flush(self) -> None:
        self._exchange()

    def disconnect(self) -> None:
        for conn in self._conns:
            conn.disconnect()


@cache
def _error_reply() -> type[Exception]:
    from redis.exceptions import ResponseError

    return ResponseError


class AsyncRedisClusterClientNode(AsyncBatchingClient):
    """The asyncio twin: one redis.asyncio connection per master, every master's batch
    sent and read concurrently. Create it with ``await AsyncRedisClusterClientNode.open(...)``."""

    def __init__(
        self,
        layout: ClusterLayout,
        conns: list[Any],
        commands: _Commands,
        depth: int,
    ) -> None:
        self.layout, self._conns, self._commands, self._depth = layout, conns, commands, depth
        self._ready = [False] * len(conns)
        self._batch = _Batch(len(conns))

    @classmethod
    async def open(
        cls, config: StrategyConfig, namespace: str, shards_per_master: int = SHARDS_PER_MASTER
    ) -> AsyncRedisClusterClientNode:
        import redis.asyncio

        seed_host, pool = _seed_pool(redis.asyncio, config)
        conn_class: Any = pool.connection_class
        kwargs: dict[str, Any] = dict(pool.connection_kwargs)
        seed: Any = conn_class(**kwargs)
        try:
            with _reading_cluster_slots():
                await seed.send_command("CLUSTER", "SLOTS")
                reply = await seed.read_response()
        finally:
            await seed.disconnect()
        layout = ClusterLayout(parse_cluster_slots(reply, seed_host), namespace, shards_per_master)
        conns = [conn_class(**{**kwargs, "host": h, "port": p}) for h, p in layout.masters]
        node = cls(layout, conns, _Commands(config.session_timeout), config.pipeline)
        for m in range(len(conns)):
            try:
                await node._prepare(m)
            except _connection_errors() as exc:
                await node.disconnect()
                raise _silent_master(layout, m, exc) from exc
        return node

    async def _prepare(self, m: int) -> None:
        if self._ready[m]:
            return
        conn = self._conns[m]
        for script in self._commands.scripts:
            await conn.send_command("SCRIPT", "LOAD", script)
            await conn.read_response()
        self._ready[m] = True

    async def _round_trip(self, m: int, queue: list[Command]) -> list[Any]:
        await self._prepare(m)
        conn = self._conns[m]
        await conn.send_packed_command(conn.pack_commands(queue))
        replies: list[Any] = []
        for _ in queue:
            try:
                replies.append(await conn.read_response())
            except _error_reply() as exc:
                replies.append(exc)
        return replies

    async def _exchange(self) -> int:
        import asyncio

        queues, counting = self._batch.take()
        busy = [m for m, queue in enumerate(queues) if queue]
        if not busy:
            return 0
        if len(busy) == 1:
            outcomes: list[Any] = []
            try:
                outcomes.append(await self._round_trip(busy[0], queues[busy[0]]))
            except _connection_errors() as exc:
                outcomes.append(exc)
        else:
            outcomes = list(
                await asyncio.gather(
                    *(self._round_trip(m, queues[m]) for m in busy), return_exceptions=True
                )
            )
        replies: list[list[Any] | None] = [None] * len(queues)
        failures: dict[int, str] = {}
        for m, outcome in zip(busy, outcomes, strict=True):
            if isinstance(outcome, _connection_errors()):
                self._ready[m] = False
                await self._conns[m].disconnect()
                failures[m] = _why(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                replies[m] = cast(list[Any], outcome)
        return _outcome(self.layout, queues, replies, failures, counting)

    async def _queued(self) -> None:
        self._batch.ops += 1
        if self._batch.ops >= self._depth:
            await self._exchange()

    async def _write(self, user: str, command_of: Any, now: float) -> None:
        shard = user_shard(user, self.layout.shards)
        command = command_of(self.layout.keys[shard], user, now)
        self._batch.queues[self.layout.key_master[shard]].append(command)
        await self._queued()

    async def write(self, kind: str, user: str, now: float) -> None:
        await self._write(user, getattr(self._commands, kind), now)

    async def count(self, now: float) -> int:
        for shard, key in enumerate(self.layout.keys):
            self._batch.queues[self.layout.key_master[shard]].append(self._commands.count(key, now))
        self._batch.counting = True
        return await self._exchange()

    async def flush(self) -> None:
        await self._exchange()

    async def disconnect(self) -> None:
        for conn in self._conns:
            await conn.disconnect()


class RedisClusterSessions(ServiceStrategy):
    name = "redis-cluster"
    summary = (
        "redis-zset sharded over a Redis Cluster: users hashed into hash-tagged shard keys; "
        "a read sums every shard's trim-and-count."
    )
    consistency = Consistency.EVENTUAL
    specification = SESSIONS
    article_approach = "Redis"
    service = "redis-cluster"
    syncs = False  # a sync only flushes the queued writes
    #: Shards per master.
    shards_per_master: int = SHARDS_PER_MASTER

    def client(self, namespace: str, worker: int) -> ClientNode:
        return RedisClusterClientNode(self.config, namespace, self.shards_per_master)

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        return await AsyncRedisClusterClientNode.open(
            self.config, namespace, self.shards_per_master
        )
