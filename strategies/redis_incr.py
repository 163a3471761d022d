"""``redis-incr``: one Redis integer, INCR on login, DECR on logout, GET to read.

The cheapest Redis design and the least safe: it counts events, not users, so a repeated
login counts twice, and INCR is not idempotent: a command retried after a timeout whose
first attempt did reach the server counts twice. Consistency claimed: strong (one server,
atomic commands), under no retries and no duplicate logins.
"""

from __future__ import annotations

from .base import AsyncClientNode, ClientNode, Consistency, Mode, ServiceStrategy
from .redis_client import AsyncRedisClientNode, Command, RedisClientNode
from .spec import BALANCE


class IncrCommands:
    scripts: tuple[str, ...] = ()

    def login(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("INCR", ns + "count"))

    def logout(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("DECR", ns + "count"))

    def heartbeat(self, out: list[Command], ns: str, user: str, now: float) -> None:
        return None

    def count(self, out: list[Command], ns: str, now: float) -> None:
        out.append(("GET", ns + "count"))


class RedisIncrCounter(ServiceStrategy):
    name = "redis-incr"
    summary = "One Redis integer: INCR on login, DECR on logout (not idempotent under retries)."
    consistency = Consistency.STRONG
    specification = BALANCE
    modes = frozenset({Mode.THREAD, Mode.PROCESS, Mode.ASYNCIO})
    article_approach = "Redis"
    service = "redis"

    def client(self, namespace: str, worker: int) -> ClientNode:
        return RedisClientNode(
            self.config.endpoint,
            IncrCommands(),
            namespace,
            self.config.pipeline,
            timeout=self.config.request_timeout,
        )

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        return await AsyncRedisClientNode.open(
            self.config.endpoint,
            IncrCommands(),
            namespace,
            self.config.pipeline,
            timeout=self.config.request_timeout,
        )
