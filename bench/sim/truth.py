"""Ground truth: which users are actually online at each instant.

A user is online from a login until a logout, or, when the user vanished (stopped without
logging out), until ``last_seen + session_timeout`` has passed (``last_seen``: the last
login or heartbeat; online at exactly that instant, offline just after, as in
:class:`~countbench.strategies.tracker.SessionTracker`). A vanished user who logs in again
before expiring stays online without a break. The truth does not depend on the nodes: a
client operation rejected by a crashed node still happened for the user.
"""

from __future__ import annotations

import heapq

OFFLINE, OPEN, VANISHED = 0, 1, 2


class Truth:
    __slots__ = (
        "_expiry",
        "expired",
        "last_seen",
        "online",
        "pending",
        "state",
        "timeout",
    )

    def __init__(self, users: int, timeout: float) -> None:
        self.timeout = timeout
        self.state = [OFFLINE] * users
        self.last_seen = [0.0] * users
        self.online = 0  # users online now
        self.pending = 0  # vanished users not expired yet (online only by their timeout)
        self.expired = 0  # vanished sessions that expired
        self._expiry: list[tuple[float, int]] = []

    def advance(self, now: float) -> None:
        """Expire every vanished session whose deadline is before ``now``."""
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            deadline, user = heapq.heappop(expiry)
            if self.state[user] == VANISHED and self.last_seen[user] + self.timeout == deadline:
                self.state[user] = OFFLINE
                self.online -= 1
                self.pending -= 1
                self.expired += 1

    def login(self, user: int, now: float) -> None:
        state = self.state[user]
        if state == OFFLINE:
            self.online += 1
        elif state == VANISHED:
            self.pending -= 1
        self.state[user] = OPEN
        self.last_seen[user] = now

    def heartbeat(self, user: int, now: float) -> None:
        if self.state[user] == OPEN:
            self.last_seen[user] = now

    def logout(self, user: int, now: float) -> None:
        if self.state[user] == OPEN:
            self.state[user] = OFFLINE
            self.online -= 1

    def vanish(self, user: int, now: float) -> None:
        if self.state[user] == OPEN:
            self.state[user] = VANISHED
            self.pending += 1
            heapq.heappush(self._expiry, (self.last_seen[user] + self.timeout, user))

    def open_users(self) -> list[int]:
        """Users in a session they have not left, in index order."""
        return [user for user, state in enumerate(self.state) if state == OPEN]
