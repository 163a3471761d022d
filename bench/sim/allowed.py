"""The values a strategy's specification allows, from the operations the system accepted.

:class:`Allowed` replays the accepted history (a login refused by a node that was down is
not in it) under the strategy's :class:`~countbench.strategies.spec.Specification` and
gives, at any instant, the interval ``[low, high]`` a correct count must lie in. Without
indeterminate operations ``low == high``: the one value the specification gives.

An accepted change becomes *indeterminate* when the node incarnation that accepted it
restarts without its state before any other node knew of it (:meth:`lost`): it may or may
not have survived. A count operation (``balance``, ``logins``) widens the interval by one
on the side the change moved it; a user-based one (``members``, ``sessions``) puts the
user *in doubt*: counted in ``high``, not in ``low``. A ``members`` user leaves doubt at
their next accepted login or logout; a ``sessions`` (or ``seen``) user once they are
offline and every touch of theirs (accepted or lost) is older than the session timeout,
since a lost lease may outlive a later logout until then.

Counts are never negative: both bounds are clamped at 0, as a count is; an estimate's
``tolerance`` then widens them.
"""

from __future__ import annotations

import heapq

from ...strategies.spec import Counts, Specification


class Allowed:
    __slots__ = (
        "_doubt_heap",
        "_expiry",
        "counts",
        "doubt",
        "doubt_on",
        "doubtful",
        "ever",
        "ever_open",
        "expired",
        "last_seen",
        "minus",
        "online",
        "open",
        "opens",
        "plus",
        "spec",
        "timeout",
        "touched",
        "value",
    )

    def __init__(self, spec: Specification, users: int, timeout: float) -> None:
        self.spec = spec
        self.counts = spec.counts
        self.opens = spec.heartbeat_opens
        self.timeout = timeout
        self.value = 0  # balance, logins: the count of accepted, surviving changes
        self.minus = self.plus = 0  # how far below / above it a correct count may be
        # logins accepted (balance, logins), or users ever counted: no subset of the
        # accepted operations, lost ones included, gives a higher count (see ceiling)
        self.ever = 0
        self.ever_open = [False] * users
        self.open = [False] * users  # members, sessions: the user is counted
        self.online = 0  # users counted
        self.doubt = [False] * users
        self.doubtful = 0  # users in doubt
        self.doubt_on = 0  # users in doubt and counted
        self.last_seen = [0.0] * users
        self.touched = [0.0] * users  # latest touch, accepted or lost
        self.expired = 0  # sessions closed by the timeout
        self._expiry: list[tuple[float, int]] = []
        self._doubt_heap: list[tuple[float, int]] = []

    # -- the accepted history --------------------------------------------------------------

    def login(self, user: int, now: float) -> None:
        counts = self.counts
        if counts is Counts.BALANCE or counts is Counts.LOGINS:
            self.value += 1
            self.ever += 1
            return
        self._set(user, True)
        self.touched[user] = max(self.touched[user], now)
        if counts is Counts.MEMBERS:
            self._clear(user)
        else:
            self._touch(user, now)

    def logout(self, user: int, now: float) -> None:
        counts = self.counts
        if counts is Counts.BALANCE:
            self.value -= 1
            return
        if counts is Counts.LOGINS or counts is Counts.SEEN:
            return
        self._set(user, False)
        self.touched[user] = max(self.touched[user], now)
        if counts is Counts.MEMBERS:
            self._clear(user)
        elif self.doubt[user]:
            heapq.heappush(self._doubt_heap, (self.touched[user] + self.timeout, user))

    def heartbeat(self, user: int, now: float) -> None:
        if self.counts is not Counts.SESSIONS and self.counts is not Counts.SEEN:
            return
        self.touched[user] = max(self.touched[user], now)
        if self.open[user]:
            self._touch(user, now)
        elif self.opens or self.counts is Counts.SEEN:
            self._set(user, True)
            self._touch(user, now)

    def lost(self, login: bool, user: int, now: float) -> None:
        """An accepted login (``login``) or logout of ``user`` at ``now`` may be lost."""
        counts = self.counts
        if counts is Counts.BALANCE or counts is Counts.LOGINS:
            if login:
                self.value -= 1
                self.plus += 1
            elif counts is Counts.BALANCE:
                self.value += 1
                self.minus += 1
            return
        self.touched[user] = max(self.touched[user], now)
        if not self.doubt[user]:
            self.doubt[user] = True
            self.doubtful += 1
            self.doubt_on += self.open[user]
        if counts is not Counts.MEMBERS and not self.open[user]:
            heapq.heappush(self._doubt_heap, (self.touched[user] + self.timeout, user))

    def advance(self, now: float) -> None:
        """Expire every session whose deadline is before ``now``; end the doubts that
        the timeout has settled."""
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            deadline, user = heapq.heappop(expiry)
            if self.open[user] and self.last_seen[user] + self.timeout == deadline:
                self._set(user, False)
                self.expired += 1
                if self.doubt[user]:
                    heapq.heappush(self._doubt_heap, (self.touched[user] + self.timeout, user))
        pending = self._doubt_heap
        while pending and pending[0][0] < now:
            _, user = heapq.heappop(pending)
            if not self.doubt[user] or self.open[user]:
                continue
            settles = self.touched[user] + self.timeout
            if settles < now:
                self._clear(user)
            else:
                heapq.heappush(pending, (settles, user))

    # -- the answer ------------------------------------------------------------------------

    def ceiling(self) -> int:
        """The highest count any subset of the accepted operations could give: a bound
        every count must respect, however stale or partial its view."""
        return self.spec.widen(0, self.ever)[1]

    def bounds(self) -> tuple[int, int]:
        """``(low, high)``: a correct count lies in between (both included)."""
        if self.counts is Counts.BALANCE or self.counts is Counts.LOGINS:
            low, high = self.value - self.minus, self.value + self.plus
        else:
            low = self.online - self.doubt_on
            high = low + self.doubtful
        return self.spec.widen(max(0, low), max(0, high))

    # -- helpers ---------------------------------------------------------------------------

    def _set(self, user: int, counted: bool) -> None:
        if self.open[user] == counted:
            return
        self.open[user] = counted
        if counted and not self.ever_open[user]:
            self.ever_open[user] = True
            self.ever += 1
        step = 1 if counted else -1
        self.online += step
        if self.doubt[user]:
            self.doubt_on += step

    def _touch(self, user: int, now: float) -> None:
        self.last_seen[user] = now
        heapq.heappush(self._expiry, (now + self.timeout, user))

    def _clear(self, user: int) -> None:
        if self.doubt[user]:
            self.doubt[user] = False
            self.doubtful -= 1
            self.doubt_on -= self.open[user]


#: A count beyond this magnitude is refused as absurd (a float holds integers exactly up to
#: it, so every metric stays exact) and clamped to it.
COUNT_LIMIT = 2**53


def checked_count(value: object) -> tuple[int, str]:
    """``(value, "")`` for a whole number within ±COUNT_LIMIT (an int subclass, numpy's
    or an IntEnum's, included); else the nearest valid value and why ``value`` is absurd
    (not a number, not a whole number, beyond ±2**53)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) <= COUNT_LIMIT:
            return int(value), ""
        return int(max(-COUNT_LIMIT, min(COUNT_LIMIT, value))), "beyond ±2**53"
    if not isinstance(value, float) or value != value:
        return 0, "not a number"
    fixed = int(max(-COUNT_LIMIT, min(COUNT_LIMIT, value)))
    if not value.is_integer():
        return fixed, "not a whole number"
    return fixed, "beyond ±2**53" if abs(value) > COUNT_LIMIT else "not an int"


def shown(value: object) -> str:
    """A short text for any value a count returned (repr() refuses huge ints)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_bounds(low: int, high: int) -> str:
    """``{5}`` or ``[3, 7]``."""
    return f"{{{low}}}" if low == high else f"[{low}, {high}]"


class ValueAges:
    """How old a count is, judged by value: the time since the specification last allowed
    it. ``note(t, low, high)`` is told the allowed interval whenever the caller looks at it
    (it may have moved since); a value that left the interval at a note is remembered with
    that note's time."""

    __slots__ = ("high", "left_at", "low")

    def __init__(self) -> None:
        self.low, self.high = 0, 0
        self.left_at: dict[int, float] = {}

    def note(self, t: float, low: int, high: int) -> None:
        old_low, old_high = self.low, self.high
        if low == old_low and high == old_high:
            return
        left = self.left_at
        for value in range(old_low, min(old_high, low - 1) + 1):
            left[value] = t
        for value in range(max(old_low, high + 1), old_high + 1):
            left[value] = t
        self.low, self.high = low, high

    def age(self, t: float, value: int) -> float | None:
        """0 when ``value`` is allowed now, the seconds since it last was, or None when it
        never was."""
        if self.low <= value <= self.high:
            return 0.0
        left = self.left_at.get(value)
        return None if left is None else t - left
