"""What the clients did, and the counter check on it.

Every client operation is an :class:`Op`: what was asked, when it was invoked and when the
client stopped waiting (seconds on one monotonic clock shared by every process of the
run), and its :class:`Outcome`:

* ``ok``: the server answered: the effect happened (a read has its value);
* ``fail``: the operation certainly had no effect (no connection could be opened, or the
  server refused it with an error reply);
* ``info``: the client cannot know: the request may have reached the server before the
  connection broke or the answer timed out. Such an operation may take effect at any later
  time, even after the client gave up on it (a paused server runs what sat in its socket
  buffer when it is resumed).

An operation retried after an ``info`` attempt is one operation: its outcome is that of
its last attempt, unless an earlier one was ``info`` and the last ``fail`` (then ``info``).

The check (:func:`check_counter`) treats the count as a counter that each login raises by
one and each logout lowers by one, which is what the clients' workload guarantees for
every correct strategy (a client logs in only users it knows to be offline and logs out
only users it knows to be online, and stops touching a user once an operation on it was
not ``ok``). A read invoked at ``s`` and answered at ``e`` must lie between

* lower = logins acknowledged before ``s`` - logouts possibly applied by ``e``
  (``ok`` or ``info``, invoked before ``e``);
* upper = logins possibly applied by ``e`` - logouts acknowledged before ``s``.

A read below its lower bound lost acknowledged updates; one above its upper bound counted
something more than once (a retried INCR). The final read, after faults are healed and
clients stopped, is checked with ``s = e = infinity``.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


DELTA = {"login": 1, "logout": -1}


@dataclass(frozen=True, slots=True)
class Op:
    client: int
    kind: str  # login | logout | heartbeat | count
    user: str
    start: float
    end: float
    outcome: Outcome
    attempts: int = 1
    value: int | None = None

    @property
    def delta(self) -> int:
        return DELTA.get(self.kind, 0)

    def as_row(self) -> list[object]:
        return [
            self.client,
            self.kind,
            self.user,
            self.start,
            self.end,
            str(self.outcome),
            self.attempts,
            self.value,
        ]

    @classmethod
    def from_row(cls, row: Sequence[object]) -> Op:
        client, kind, user, start, end, outcome, attempts, value = row
        assert isinstance(client, int) and isinstance(kind, str) and isinstance(user, str)
        assert isinstance(start, float) and isinstance(end, float) and isinstance(outcome, str)
        assert isinstance(attempts, int) and (value is None or isinstance(value, int))
        return cls(client, kind, user, start, end, Outcome(outcome), attempts, value)


@dataclass(frozen=True, slots=True)
class ReadCheck:
    """One checked read: its value and the bounds it had to lie within."""

    op: Op
    lower: int
    upper: int

    @property
    def below(self) -> int:
        """How many acknowledged updates the read is missing at least (0 if none)."""
        assert self.op.value is not None
        return max(0, self.lower - self.op.value)

    @property
    def above(self) -> int:
        """How many more users the read counted than could be online (0 if none)."""
        assert self.op.value is not None
        return max(0, self.op.value - self.upper)

    @property
    def valid(self) -> bool:
        return self.below == 0 and self.above == 0


class _Prefix:
    """Sum of ``weight`` over the items whose ``key`` is strictly below a given time."""

    def __init__(self, items: Iterable[tuple[float, int]]) -> None:
        pairs = sorted(items)
        self.keys = [k for k, _ in pairs]
        self.sums = [0, *itertools.accumulate(w for _, w in pairs)]

    def before(self, t: float) -> int:
        return self.sums[bisect.bisect_left(self.keys, t)]


@dataclass(frozen=True, slots=True)
class CounterCheck:
    reads: tuple[ReadCheck, ...]
    final: ReadCheck | None

    @property
    def invalid_reads(self) -> list[ReadCheck]:
        return [r for r in self.reads if not r.valid]

    @property
    def lost(self) -> int:
        """The most acknowledged updates missing from one read (final included)."""
        return max((r.below for r in self._all()), default=0)

    @property
    def extra(self) -> int:
        """The most users one read counted beyond every possibly applied login."""
        return max((r.above for r in self._all()), default=0)

    @property
    def valid(self) -> bool:
        return all(r.valid for r in self._all())

    def _all(self) -> list[ReadCheck]:
        return [*self.reads, *([self.final] if self.final is not None else [])]


def check_counter(ops: Sequence[Op], final: Op | None = None) -> CounterCheck:
    """Check every ``ok`` read of ``ops`` and the ``final`` read (see the module docstring).
    O((writes + reads) log writes)."""
    writes = [op for op in ops if op.delta and op.outcome is not Outcome.FAIL]
    acked_logins = _Prefix(
        (op.end, 1) for op in writes if op.delta > 0 and op.outcome is Outcome.OK
    )
    acked_logouts = _Prefix(
        (op.end, 1) for op in writes if op.delta < 0 and op.outcome is Outcome.OK
    )
    maybe_logins = _Prefix((op.start, 1) for op in writes if op.delta > 0)
    maybe_logouts = _Prefix((op.start, 1) for op in writes if op.delta < 0)

    def bounds(op: Op, s: float, e: float) -> ReadCheck:
        lower = acked_logins.before(s) - maybe_logouts.before(e)
        upper = maybe_logins.before(e) - acked_logouts.before(s)
        return ReadCheck(op, lower, upper)

    reads = tuple(
        bounds(op, op.start, op.end)
        for op in ops
        if op.kind == "count" and op.outcome is Outcome.OK and op.value is not None
    )
    inf = float("inf")
    return CounterCheck(reads, bounds(final, inf, inf) if final is not None else None)
