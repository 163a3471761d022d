"""``redis-incr``: one Redis integer, INCR on login, DECR on logout, GET to read.

The cheapest Redis design and the least safe: it counts events, not users, so a repeated
login counts twice, and INCR is not idempotent: a command retried after a timeout whose
first attempt did reach the server counts twice. Consistency claimed: strong (one server,
atomic commands), under no retries and no duplicate logins.
"""

from __future__ import annotations

from .redis_client import Command, RedisStrategy
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


class RedisIncrCounter(RedisStrategy):
    name = "redis-incr"
    summary = "One Redis integer: INCR on login, DECR on logout (not idempotent under retries)."
    specification = BALANCE

    def commands(self) -> IncrCommands:
        return IncrCommands()
