"""``redis-zset``: online users in a sorted set scored by last-seen time.

Login is ZADD (score = now; a second login only moves the score), logout ZREM, heartbeat a
script that renews the score of a user still within the timeout and removes one past it
(so an expired session is never revived), and a read is one script that removes every
member older than the timeout and returns ZCARD, atomically. Consistency: strong (one
server, each operation atomic), and unlike ``redis-set`` it forgets users who vanish.
Time is the ``now`` the client passes, not Redis's clock.
"""

from __future__ import annotations

from .redis_client import Command, RedisStrategy, sha1
from .spec import SESSIONS

HEARTBEAT = """
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not seen then return 0 end
if tonumber(seen) + tonumber(ARGV[3]) < tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
return 1
"""

COUNT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""

HEARTBEAT_SHA, COUNT_SHA = sha1(HEARTBEAT), sha1(COUNT)


class SortedSetCommands:
    scripts: tuple[str, ...] = (HEARTBEAT, COUNT)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.limit = repr(timeout)

    def login(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("ZADD", ns + "online", "GT", repr(now), user))

    def logout(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("ZREM", ns + "online", user))

    def heartbeat(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("EVALSHA", HEARTBEAT_SHA, 1, ns + "online", user, repr(now), self.limit))

    def count(self, out: list[Command], ns: str, now: float) -> None:
        out.append(("EVALSHA", COUNT_SHA, 1, ns + "online", repr(now - self.timeout)))


class RedisSortedSetSessions(RedisStrategy):
    name = "redis-zset"
    summary = "Redis sorted set scored by last-seen time; a read drops expired users atomically."
    specification = SESSIONS

    def commands(self) -> SortedSetCommands:
        return SortedSetCommands(self.config.session_timeout)
