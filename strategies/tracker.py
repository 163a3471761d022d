"""One server's table of online users: per-user last-seen time, with expiry.

The expiry sweep does not scan every session: deadlines sit in a min-heap, so a read pops
only the sessions that expired since the last read (plus stale heap entries left by
heartbeats), amortised O(log n) each.

Every call carries its caller's time, and callers' clocks need not agree (each benchmark
worker replays its own timeline; a server's clients are never in step). A session is judged
at each write's own time: a read stamped later than a heartbeat that is still on time can
sweep the session before the heartbeat arrives, and the heartbeat then brings it back
(a swept session is kept until the reads' clock is a timeout past its deadline; a
heartbeat that comes after that is ignored).
"""

from __future__ import annotations

import heapq


class SessionTracker:
    """Online users of one server, with last-seen times. Not thread-safe."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._last_seen: dict[str, float] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._swept: dict[str, float] = {}  # user -> last seen, for a heartbeat on time
        self._forget: list[tuple[float, str]] = []  # (when to forget it, user), min first

    def heartbeat(self, user: str, now: float) -> None:
        seen = self._last_seen.get(user)
        if seen is None:
            swept = self._swept.get(user)
            if swept is not None and swept < now <= swept + self.timeout:
                del self._swept[user]
                self._touch(user, now)  # on time by its own clock: swept by a later read
            return
        if seen + self.timeout < now:
            # Over by this heartbeat's clock: swept, as a read at its time would have.
            del self._last_seen[user]
            self._sweep(user, seen)
            return
        self._touch(user, now)

    def login(self, user: str, now: float) -> None:
        self._swept.pop(user, None)
        self._touch(user, now)

    def logout(self, user: str, now: float) -> None:
        self._last_seen.pop(user, None)
        self._swept.pop(user, None)

    def count(self, now: float) -> int:
        self.expire(now)
        return len(self._last_seen)

    def expire(self, now: float) -> int:
        """Drop every user last seen more than ``timeout`` before ``now``; return how many."""
        deadlines, last_seen, timeout = self._deadlines, self._last_seen, self.timeout
        swept = self._swept
        dropped = 0
        while deadlines and deadlines[0][0] < now:
            deadline, user = heapq.heappop(deadlines)
            seen = last_seen.get(user)
            # A heartbeat or a new login since this entry was pushed left a later deadline.
            if seen is not None and seen + timeout == deadline:
                del last_seen[user]
                self._sweep(user, seen)
                dropped += 1
        forget = self._forget
        while forget and forget[0][0] < now:  # kept one timeout past their deadline
            until, user = heapq.heappop(forget)
            seen = swept.get(user)
            if seen is not None and seen + timeout + timeout == until:  # as pushed
                del swept[user]
        return dropped

    def _sweep(self, user: str, seen: float) -> None:
        """Keep a session that is over for a heartbeat that was on time by its own clock."""
        self._swept[user] = seen
        heapq.heappush(self._forget, (seen + self.timeout + self.timeout, user))

    def _touch(self, user: str, now: float) -> None:
        seen = self._last_seen.get(user)
        if seen is not None and seen >= now:
            return
        self._last_seen[user] = now
        heapq.heappush(self._deadlines, (now + self.timeout, user))
