"""The metrics of a simulated run, and exactly what each one means.

Phases: the *client phase* runs from 0 to ``stop``, the time of the last client operation;
*quiescence* runs from ``stop`` to ``end = stop + grace``: every fault ends at ``stop``
(partitions heal, crashed nodes restart), no login, logout or read is sent, online users
keep heartbeating, nodes keep syncing. The *truth* at time t is the number of users online
(see :mod:`.truth`). A node is *live* when no crash holds it.

**Error** (``error.all``, ``error.fault``, ``error.healthy``). On the grid
``t_k = k * sample_interval`` (k >= 1, t_k <= stop), every live node is sampled:
``e = node.count(t_k) - truth(t_k)``, observed after every event before t_k. A sample is
in a *fault window* when some fault is active at t_k, else *healthy* (which includes the
recovery after a heal). Over a window's node-samples: ``max`` = max |e|; ``mean`` = the
time-weighted mean of |e| (each sample stands for one grid step of one node's life, so on
the uniform grid it is the plain mean); ``p99`` = the nearest-rank 99th percentile of |e|;
``bias`` = the mean of e (positive: over-count). ``reads`` gives the same for the value
each client read returned against the truth at that instant.

**Request replicas** (:class:`~countbench.strategies.base.RequestReplica`: ``aggregate``,
whose read asks every node; ``session``, whose front-ends forward to the server, node 0).
A client operation is a request that finishes when the replica answers, or fails at its
deadline (``request_timeout`` after it started). A node's *count* (grid samples,
quiescence checks, final) is the value of its last answered read: a sample is as old as
the node's last read (reads go round the nodes, so about ``nodes / reads_per_second``
seconds, plus the read's own time), which the error figures include; no extra read is
made for a sample, so the cost figures are the design's own. In quiescence, where clients
do not read, every live node is read (a *probe*, not counted as a client read or in the
cost) every ``sync_interval`` while the answer can come before ``end``; the final counts
are the last probes' values. ``reads`` compares an answered read's value with the truth
at the read's start; a read that got no answer is not compared (counted in
``reads.rejected`` and ``rejected``), a *partial* one (some nodes left out) is, and is
counted in ``reads.partial``. Writes are accepted when acknowledged. Delivery staleness
is not measured (no change is replicated: ``changes`` is 0); value staleness is.

**Value staleness** (``value_staleness``), measured from the counts: for every grid
sample of a live node (``samples``) and every answered client read (``reads``), how many
seconds ago the specification last allowed that value (0 when it allows it now; ``never``
counts values it never allowed). The allowed interval is looked at after every accepted
operation, sample and read, so a value is dated to the first look after it left.

**Delivery staleness** (``staleness``). A *change* is a login or logout accepted by a
live node. It is *reflected*
by a node once the node knows it (:mod:`.knowledge`: the change reached it along a chain
of delivered messages). Its staleness is the time from acceptance to the first instant
every node live at that instant reflects it. Quantiles are nearest-rank over the changes
that were reflected; ``never`` counts the changes not reflected everywhere by ``end``
(e.g. accepted by a node that crashed before syncing them).

**Convergence**. At each heal (a fault ending before ``stop``) and at quiescence a watch
starts: ``drained_after`` = time until every live node knows every change accepted before
the heal; ``agree_after`` = time until the first grid sample (before the next fault
starts) at which all live nodes' counts are equal, ``allowed_after`` = ... equal and
allowed by the specification, ``truth_after`` = ... equal to the truth. For quiescence
the check runs after every event instead of on the grid, and ``agree_after`` (and
``allowed_after``) is the time from ``stop`` to the start of the last stretch of agreement
(on an allowed value) that lasts to ``end`` (None when the nodes disagree at ``end``).

**Final** (at ``end``): each node's ``count(end)``, its error against ``truth(end)``,
whether all agree. ``accepted_balance`` = accepted logins - accepted logouts (what an
event counter that loses nothing would show); ``vanished`` = sessions ended without a
logout, ``vanished_unexpired`` = those still within their timeout at ``end``.

**Cost** (client phase): ``client_operations`` = operations sent to nodes (logins,
logouts, heartbeats, reads, rejected ones included; vanishings are not sent);
``messages`` / ``bytes`` = message copies put on links (a broadcast to k peers is k; lost
and cut ones count; duplicate copies do not) and their body bytes; per operation = divided
by ``client_operations``. ``metadata_bytes``: the size of what one ``sync()`` returns (sum
of body sizes), mean and max over every sync of a live node in the whole run.

**Specification** (:mod:`countbench.strategies.spec`, :mod:`.allowed`). Every strategy
states what its count means; the *allowed* values at time t are those its specification
gives for the operations the system accepted by t (a login refused by a down node is not
among them; an accepted change lost with a crashed incarnation before any other node knew
it is indeterminate, and widens the interval). ``spec_error`` is, for grid samples
(``all``) and client reads (``reads``), the signed distance of a count outside the allowed
interval (0 inside): a fault of the strategy against itself, unlike ``error``, the
distance from the users actually online, which measures the design.

**Verdict**: *correct against the specification*. Every claim fails on a count that is not
a whole number within ±2**53 (an absurd count; it is clamped for the metrics), and on a
final count (at ``end``) outside the allowed interval. A strong claim also fails on any
sample or read outside it; for a request replica, on an answered read (client reads and
quiescence probes, so the final counts too) further outside the allowed values at its
start s than the users *in doubt*: d counts the users in doubt at s plus those entering
doubt and the sessions the specification expires before the answer. A user is in doubt
while an operation of theirs is in flight, and after one that got no answer in time (its
effect is unknown; for a heartbeat, from a session timeout after the user's last
acknowledged touch, unless one comes) until a login or logout of theirs is acknowledged,
or, for a sessions specification, until they have sent nothing for a session timeout plus
a request timeout. An operation refused by a node that was down certainly had no effect.
This is the Jepsen view: an operation that failed or is in flight may or may not have
taken effect, a read that fails is unavailability, not a wrong read. Such a strong claim
must agree at ``end`` but is not held to the convergence budget (one copy has nothing to
converge). Eventual (and approximate) claims are judged on the end: all nodes agree, and
quiescence ``allowed_after`` (the start of the last stretch, lasting to ``end``, in which
all live nodes agree on an allowed value) minus ``settled`` is within the budget, where
``settled`` is how long after ``stop`` the allowed values last moved (a session expiring,
or opened again by a heartbeat; 0 if they never did). A failure in a scenario that breaks
an assumption the specification states (exactly-once delivery, with any fault but added
latency, or gossip fan-out) is ``expected``, not a ``bug``. The error against the users
online is reported, never judged here (``chaos --max-error`` judges it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def nearest_rank(sorted_values: list[float], q: float) -> float:
    """The nearest-rank q-quantile of non-empty ascending values."""
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    samples: int
    max: int
    mean: float
    p99: int
    bias: float


class ErrorAccumulator:
    """Signed integer errors -> :class:`ErrorSummary`, in O(distinct values) memory."""

    __slots__ = ("hist", "max", "samples", "sum_abs", "sum_signed")

    def __init__(self) -> None:
        self.hist: dict[int, int] = {}
        self.samples = 0
        self.sum_abs = 0
        self.sum_signed = 0
        self.max = 0

    def add(self, error: int) -> None:
        size = -error if error < 0 else error
        hist = self.hist
        hist[size] = hist.get(size, 0) + 1
        self.samples += 1
        self.sum_abs += size
        self.sum_signed += error
        if size > self.max:
            self.max = size

    def p99(self) -> int:
        if not self.samples:
            return 0
        rank = max(1, math.ceil(0.99 * self.samples))
        seen = 0
        for size in sorted(self.hist):
            seen += self.hist[size]
            if seen >= rank:
                return size
        return self.max  # pragma: no cover - unreachable

    def summary(self) -> ErrorSummary:
        n = self.samples
        return ErrorSummary(
            samples=n,
            max=self.max,
            mean=self.sum_abs / n if n else 0.0,
            p99=self.p99(),
            bias=self.sum_signed / n if n else 0.0,
        )


@dataclass(frozen=True, slots=True)
class StalenessSummary:
    changes: int
    reflected: int
    never: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, changes: int, values: list[float]) -> StalenessSummary:
        done = sorted(values)
        if not done:
            return cls(changes, 0, changes, None, None, None, None, None)
        return cls(
            changes=changes,
            reflected=len(done),
            never=changes - len(done),
            p50=nearest_rank(done, 0.5),
            p90=nearest_rank(done, 0.9),
            p99=nearest_rank(done, 0.99),
            max=done[-1],
            mean=math.fsum(done) / len(done),
        )
