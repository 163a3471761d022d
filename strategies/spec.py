"""What a strategy's count means: its specification, stated in one line by the strategy.

A strategy's ``count`` is judged against the value its specification gives for the
operations the system *accepted* (a login refused by a node that was down never happened
for the system), not against the users actually online; that second figure, the error
against the online truth, is reported beside it as the design's fitness for the job.

* :data:`BALANCE`: accepted logins minus accepted logouts. A counter of events: a user
  who goes away without logging out stays counted, a repeated login counts twice.
* :data:`LOGINS`: accepted logins (a grow-only count: logouts are not counted).
* :data:`MEMBERS`: users whose latest accepted login/logout is a login (no expiry).
* :data:`SESSIONS`: users in an open session: logged in, not logged out, and heard from
  (login or heartbeat) within the session timeout. :data:`SESSIONS_HEARTBEAT_OPENS`: the
  same, but a heartbeat from a user not in a session opens one (leases that a heartbeat
  renews or creates).
* :data:`SEEN`: users heard from (login or heartbeat) within the session timeout; logouts
  are not counted (a sketch that cannot remove a user).

``tolerance``: an estimate may be off by this share of the exact value either way (a
HyperLogLog's few standard errors): ``Specification(Counts.SEEN, tolerance=0.05)``.

``exactly_once``: the design needs every message delivered once (an operation-based
counter without deduplication); a scenario that duplicates or loses messages is outside
its assumption, and a failure there is reported as expected rather than as a bug.

A plug-in states its specification in one line::

    specification = BALANCE
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum


class Counts(StrEnum):
    BALANCE = "balance"
    LOGINS = "logins"
    MEMBERS = "members"
    SESSIONS = "sessions"
    SEEN = "seen"


MEANING = {
    Counts.BALANCE: "accepted logins - accepted logouts (a user who vanished stays counted)",
    Counts.LOGINS: "accepted logins (grow-only: logouts are not counted)",
    Counts.MEMBERS: "users whose latest accepted login/logout is a login (no expiry)",
    Counts.SESSIONS: "users logged in, not logged out, heard from within the session timeout",
    Counts.SEEN: "users heard from (login or heartbeat) within the session timeout",
}


@dataclass(frozen=True, slots=True)
class Specification:
    """The set of values a correct count may take, given the accepted operations."""

    counts: Counts
    #: SESSIONS only: an accepted heartbeat of a user not in a session opens one.
    heartbeat_opens: bool = False
    #: The design needs exactly-once delivery (see the module docstring).
    exactly_once: bool = False
    #: An estimate: the share of the exact value it may be off by, either way.
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {self.tolerance!r}")

    @property
    def name(self) -> str:
        name = str(self.counts) + ("+heartbeat-opens" if self.heartbeat_opens else "")
        return name + (f"±{self.tolerance:.0%}" if self.tolerance else "")

    def widen(self, low: int, high: int) -> tuple[int, int]:
        """``[low, high]`` of exact values -> the values an estimate within ``tolerance``
        may take."""
        if not self.tolerance:
            return low, high
        return math.floor(low * (1 - self.tolerance)), math.ceil(high * (1 + self.tolerance))

    def describe(self) -> str:
        """One line: what the count means."""
        text = MEANING[self.counts]
        if self.heartbeat_opens:
            text += "; a heartbeat opens a session"
        if self.exactly_once:
            text += "; assumes exactly-once delivery"
        if self.tolerance:
            text += f"; an estimate within {self.tolerance:.0%}"
        return text

    def assuming_exactly_once(self) -> Specification:
        return replace(self, exactly_once=True)

    def to_dict(self) -> dict[str, object]:
        return {
            "counts": str(self.counts),
            "heartbeat_opens": self.heartbeat_opens,
            "exactly_once": self.exactly_once,
            "tolerance": self.tolerance,
            "name": self.name,
            "meaning": self.describe(),
        }


BALANCE = Specification(Counts.BALANCE)
LOGINS = Specification(Counts.LOGINS)
MEMBERS = Specification(Counts.MEMBERS)
SESSIONS = Specification(Counts.SESSIONS)
SESSIONS_HEARTBEAT_OPENS = Specification(Counts.SESSIONS, heartbeat_opens=True)
SEEN = Specification(Counts.SEEN)
