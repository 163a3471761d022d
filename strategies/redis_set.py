"""``redis-set``: the article's Redis pattern, flaw included.

Login adds the user to one online set (SADD) and writes a session key with an expiry
(SET ... EX timeout); logout removes both; heartbeat renews the session key's expiry; a
read is SCARD of the set. Consistency claimed: strong (one server, atomic commands). The
flaw is kept on purpose: when a session key expires because the user vanished, nothing
removes the user from the set, so the count stays too high until a logout that never
comes. Redis expires keys by its own wall clock, in whole seconds.
"""

from __future__ import annotations

import math

from .redis_client import Command, RedisStrategy
from .spec import MEMBERS


class SetCommands:
    scripts: tuple[str, ...] = ()

    def __init__(self, timeout: float) -> None:
        self.ttl = max(1, math.ceil(timeout))

    def login(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("SADD", ns + "online", user))
        out.append(("SET", ns + "session:" + user, "1", "EX", self.ttl))

    def logout(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("SREM", ns + "online", user))
        out.append(("DEL", ns + "session:" + user))

    def heartbeat(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("EXPIRE", ns + "session:" + user, self.ttl))

    def count(self, out: list[Command], ns: str, now: float) -> None:
        out.append(("SCARD", ns + "online"))


class RedisSetSessions(RedisStrategy):
    name = "redis-set"
    summary = (
        "Redis SADD online set + session key with expiry, SCARD to read (article's flaw kept)."
    )
    specification = MEMBERS

    def commands(self) -> SetCommands:
        return SetCommands(self.config.session_timeout)
