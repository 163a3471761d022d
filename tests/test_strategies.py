"""Tests of the counting strategies: CRDT laws, replica convergence, local counters under
contention, session-tracker semantics against a reference model, and the registry."""

from __future__ import annotations

import itertools
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from countbench.strategies import local
from countbench.strategies.base import (
    Consistency,
    HostedStrategy,
    LockedNode,
    Message,
    Mode,
    Node,
    ReplicatedStrategy,
    ServiceStrategy,
    SharedStrategy,
    Strategy,
    StrategyConfig,
)
from countbench.strategies.gcounter import (
    GCounter,
    GCounterStrategy,
    decode_counts,
    encode_counts,
)
from countbench.strategies.local import (
    AtomicCounter,
    LocalCounter,
    PlainCounter,
    SharedMemoryCounter,
)
from countbench.strategies.pncounter import PNCounter, PNCounterStrategy
from countbench.strategies.registry import BUILTINS, UnknownStrategy, discover, resolve
from countbench.strategies.session import SessionStrategy
from countbench.strategies.tracker import SessionTracker

# No example database: the tests must not write a .hypothesis directory into the repo.
LAWS = settings(max_examples=200, deadline=None, database=None)
SIMULATION = settings(max_examples=150, deadline=None, database=None)

# ---------------------------------------------------------------------------------------
# 1. CRDT laws: GCounter and PNCounter
# ---------------------------------------------------------------------------------------

replica_ids = st.integers(min_value=0, max_value=6)
entry_values = st.integers(min_value=0, max_value=10**12)

gcounters = st.dictionaries(replica_ids, entry_values, max_size=7).map(GCounter)
pncounters = st.builds(PNCounter, gcounters, gcounters)


T = TypeVar("T", GCounter, PNCounter)


def merge(a: T, b: T) -> T:
    out = a.copy()
    out.merge(b.copy())
    return out


def assert_dominates(merged: GCounter, *inputs: GCounter) -> None:
    for counter in inputs:
        for replica, value in counter.counts.items():
            assert merged.counts.get(replica, 0) >= value, (merged, counter)


#: Three counters of one kind (G or PN), for the merge laws both must obey.
same_kind = st.sampled_from([gcounters, pncounters]).flatmap(lambda c: st.tuples(c, c, c))


@LAWS
@given(same_kind)
def test_merge_commutative(abc: tuple[Any, Any, Any]) -> None:
    a, b, _ = abc
    before = (a.copy(), b.copy())
    assert merge(a, b) == merge(b, a)
    assert (a, b) == before  # inputs untouched


@LAWS
@given(same_kind)
def test_merge_associative(abc: tuple[Any, Any, Any]) -> None:
    a, b, c = abc
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@LAWS
@given(same_kind)
def test_merge_idempotent(abc: tuple[Any, Any, Any]) -> None:
    a, b, _ = abc
    assert merge(a, a) == a
    ab = merge(a, b)
    assert merge(ab, b) == ab
    assert merge(ab, a) == ab


@LAWS
@given(gcounters, gcounters)
def test_gcounter_merge_is_least_upper_bound(a: GCounter, b: GCounter) -> None:
    merged = merge(a, b)
    assert_dominates(merged, a, b)
    # Exactly the element-wise maximum: nothing is invented.
    keys = set(a.counts) | set(b.counts)
    expected = GCounter({k: max(a.counts.get(k, 0), b.counts.get(k, 0)) for k in keys})
    assert merged == expected
    assert merged.value() >= max(a.value(), b.value())


@LAWS
@given(gcounters)
def test_gcounter_encode_decode_round_trip(a: GCounter) -> None:
    decoded = decode_counts(encode_counts(a))
    assert decoded == a
    assert decoded.value() == a.value()
    assert encode_counts(decoded) == encode_counts(a)


@LAWS
@given(gcounters, replica_ids)
def test_gcounter_copy_is_independent(a: GCounter, replica: int) -> None:
    before = a.items()
    copied = a.copy()
    copied.increment(replica, 1)
    assert a.items() == before
    assert copied.value() == a.value() + 1


def test_gcounter_rejects_negative_increment() -> None:
    counter = GCounter()
    with pytest.raises(ValueError):
        counter.increment(0, -1)
    assert counter.value() == 0


@LAWS
@given(pncounters, pncounters)
def test_pncounter_merge_dominates_inputs(a: PNCounter, b: PNCounter) -> None:
    merged = merge(a, b)
    assert_dominates(merged.positive, a.positive, b.positive)
    assert_dominates(merged.negative, a.negative, b.negative)
    assert merged.positive == merge(a.positive, b.positive)
    assert merged.negative == merge(a.negative, b.negative)


@LAWS
@given(pncounters)
def test_pncounter_encode_decode_round_trip(a: PNCounter) -> None:
    decoded = PNCounter.decode(a.encode())
    assert decoded == a
    assert decoded.value() == a.value()
    assert decoded.encode() == a.encode()


@LAWS
@given(pncounters, replica_ids)
def test_pncounter_copy_is_independent(a: PNCounter, replica: int) -> None:
    before = a.encode()
    copied = a.copy()
    copied.increment(replica)
    copied.decrement(replica, 3)
    assert a.encode() == before
    assert copied.value() == a.value() - 2


# ---------------------------------------------------------------------------------------
# 2. Replica convergence under any delivery order, delay and duplication
# ---------------------------------------------------------------------------------------

# (kind, node): kind in {"login", "logout", "sync", "deliver"}; node is taken modulo N.
cluster_ops = st.lists(
    st.tuples(
        st.sampled_from(["login", "logout", "sync", "deliver"]),
        st.integers(min_value=0, max_value=10**6),
    ),
    max_size=60,
)


def fan_out(message: Message, nodes: int) -> list[tuple[Message, int]]:
    """Every (message, destination) pair a message stands for."""
    if message.dst is not None:
        return [(message, message.dst)]
    return [(message, dst) for dst in range(nodes) if dst != message.src]


@pytest.mark.parametrize(
    ("strategy_cls", "counts_logouts"),
    [(GCounterStrategy, False), (PNCounterStrategy, True)],
    ids=["gcounter", "pncounter"],
)
@SIMULATION
@given(nodes=st.integers(min_value=2, max_value=5), ops=cluster_ops, data=st.data())
def test_replicas_converge_under_any_delivery(
    strategy_cls: type[ReplicatedStrategy],
    counts_logouts: bool,
    nodes: int,
    ops: list[tuple[str, int]],
    data: st.DataObject,
) -> None:
    strategy = strategy_cls(StrategyConfig(nodes=nodes))
    replicas = [strategy.replica(i) for i in range(nodes)]
    assert [r.node_id for r in replicas] == list(range(nodes))

    now = 0.0
    logins = logouts = 0
    pending: list[tuple[Message, int]] = []
    for kind, arg in ops:
        now += 1.0
        node = arg % nodes
        if kind == "login":
            replicas[node].login(f"user{arg}", now)
            logins += 1
        elif kind == "logout":
            replicas[node].logout(f"user{arg}", now)
            logouts += 1
        elif kind == "sync":
            for message in replicas[node].sync(now):
                assert message.src == node
                pending.extend(fan_out(message, nodes))
        elif pending:
            # An early delivery; it stays pending, so it will be delivered again later.
            message, dst = pending[arg % len(pending)]
            assert replicas[dst].receive(message, now) == []

    # Every pending delivery, each one to three times, in any order.
    copies = data.draw(
        st.lists(st.integers(1, 3), min_size=len(pending), max_size=len(pending)),
        label="copies",
    )
    deliveries = [item for item, n in zip(pending, copies, strict=True) for _ in range(n)]
    for message, dst in data.draw(st.permutations(deliveries), label="order"):
        now += 1.0
        assert replicas[dst].receive(message, now) == []

    # Final round: everyone syncs, every message reaches every other replica.
    now += 1.0
    final = [item for r in replicas for m in r.sync(now) for item in fan_out(m, nodes)]
    for message, dst in final:
        assert replicas[dst].receive(message, now) == []

    counts = [r.count(now) for r in replicas]
    assert len(set(counts)) == 1, counts
    if counts_logouts:
        # count() clamps at 0: a replica never says fewer than no users are online.
        assert counts[0] == max(0, logins - logouts)
    else:
        assert counts[0] == logins
        # The G-counter over-counts online users by exactly the number of logouts.
        assert counts[0] - (logins - logouts) == logouts


# ---------------------------------------------------------------------------------------
# 3. local: no lost updates under threads or processes
# ---------------------------------------------------------------------------------------

THREADS = 8
THREAD_LOGINS = 20_000
THREAD_LOGOUTS = 5_000


def _hammer(node: Node, barrier: threading.Barrier, logins: int, logouts: int) -> None:
    barrier.wait()
    for _ in range(logins):
        node.login("u", 0.0)
    for _ in range(logouts):
        node.logout("u", 0.0)


def _run_threads(node: Node, logins: int = THREAD_LOGINS, logouts: int = THREAD_LOGOUTS) -> None:
    barrier = threading.Barrier(THREADS)
    args = (node, barrier, logins, logouts)
    threads = [threading.Thread(target=_hammer, args=args) for _ in range(THREADS)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, to give a race every chance
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old_interval)


def _pause() -> None:
    """A call between read and write: a point where the interpreter may switch threads."""


class RacyCounter:
    """A read-modify-write counter with a switch point inside: loses updates unlocked.

    On CPython 3.11 ``PlainCounter``'s ``+= 1`` happens to have no switch point, so it alone
    cannot show that ``LockedNode`` serialises anything; this one can."""

    def __init__(self, pause: Callable[[], object] = _pause) -> None:
        self.value = 0
        self.pause = pause

    def login(self, user: str, now: float) -> None:
        value = self.value
        self.pause()
        self.value = value + 1

    def logout(self, user: str, now: float) -> None:
        value = self.value
        self.pause()
        self.value = value - 1

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return self.value


@pytest.mark.parametrize(
    "make_node",
    [
        lambda: LocalCounter(StrategyConfig()).open(Mode.THREAD),
        lambda: LockedNode(PlainCounter()),
        lambda: LockedNode(RacyCounter()),
    ],
    ids=["thread-mode-node", "locked-plain-counter", "locked-racy-counter"],
)
def test_local_threads_lose_no_update(make_node: Callable[[], Node]) -> None:
    node = make_node()
    assert node.count(0.0) == 0
    _run_threads(node)
    assert node.count(0.0) == THREADS * (THREAD_LOGINS - THREAD_LOGOUTS)


def _yield_gil() -> None:
    time.sleep(0)  # always releases the GIL: another thread gets in between read and write


def test_thread_harness_detects_lost_updates() -> None:
    """Control: the harness above does catch a node that loses updates (small, since
    ``sleep(0)`` is slow), and the lock is what prevents it."""
    unlocked = RacyCounter(_yield_gil)
    _run_threads(unlocked, logins=500, logouts=0)
    assert unlocked.count(0.0) < THREADS * 500
    locked = LockedNode(RacyCounter(_yield_gil))
    _run_threads(locked, logins=500, logouts=0)
    assert locked.count(0.0) == THREADS * 500


def test_local_thread_mode_uses_atomic_counter_under_gil() -> None:
    node = LocalCounter(StrategyConfig()).open(Mode.THREAD)
    check = getattr(sys, "_is_gil_enabled", None)
    if check is None or check():
        assert isinstance(node, AtomicCounter)
    else:
        assert isinstance(node, LockedNode)


def test_local_counts_events_not_users() -> None:
    node = AtomicCounter()
    node.login("a", 0.0)
    node.login("a", 1.0)  # documented: a repeated login counts twice
    node.heartbeat("a", 2.0)
    assert node.count(2.0) == 2
    for _ in range(3):
        node.logout("b", 3.0)  # documented: may go below the truth
    assert node.count(3.0) == -1


def test_a_local_read_never_returns_a_count_that_never_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deterministic interleaving: just after a read takes the logins counter, another
    worker logs a user in and then out (the balance goes 5, 6, 5). Reading each counter
    once (the earlier read) then returns 4, a count that never was; reading the logouts
    twice around the logins sees the change, reads again, and returns 5."""
    node = AtomicCounter()
    for _ in range(10):
        node.login("u", 0.0)
    for _ in range(5):
        node.logout("u", 0.0)
    real = local._next_value
    pending = [True]

    def reading(counter: itertools.count[int]) -> int:
        value = real(counter)
        if counter is node._logins and pending[0]:
            pending[0] = False
            node.login("v", 1.0)  # the other worker, between this read's two counters
            node.logout("v", 1.0)
        return value

    monkeypatch.setattr(local, "_next_value", reading)
    assert node.count(1.0) == 5 and not pending[0]
    pending[0] = True
    assert reading(node._logins) - reading(node._logouts) == 4  # one read each: wrong


@pytest.mark.parametrize("taken", [0, 1, 9, 10, 12_345, 2**40])
def test_both_ways_of_reading_an_itertools_count_agree(taken: int) -> None:
    """local's read: the repr parse (any Python) and __reduce__ (before 3.12, a fifth of
    the time) give the next value of the count, which is how many were taken."""
    counter = itertools.count(taken)
    assert local._repr_value(counter) == local._reduce_value(counter) == taken
    next(counter)
    assert local._next_value(counter) == taken + 1
    assert local._next_value is (
        local._reduce_value if sys.version_info < (3, 12) else local._repr_value
    )


PROCESSES = 3
PROCESS_LOGINS = 2_000


def _process_logins(node: Node, logins: int) -> None:
    """Process target: module level so that a spawned child can import it."""
    for _ in range(logins):
        node.login("u", 0.0)


def test_local_process_mode_shared_memory_loses_no_update() -> None:
    node = LocalCounter(StrategyConfig()).open(Mode.PROCESS)
    assert isinstance(node, SharedMemoryCounter)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_process_logins, args=(node, PROCESS_LOGINS)) for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    assert node.count(0.0) == PROCESSES * PROCESS_LOGINS
    node.logout("u", 0.0)
    assert node.count(0.0) == PROCESSES * PROCESS_LOGINS - 1


# ---------------------------------------------------------------------------------------
# 4. session: per-user last-seen with expiry
# ---------------------------------------------------------------------------------------

TIMEOUT = 10.0


def test_session_second_login_does_not_count_twice() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.login("a", 1.0)
    tracker.login("a", 1.0)
    assert tracker.count(1.0) == 1
    tracker.login("b", 2.0)
    assert tracker.count(2.0) == 2


def test_session_second_login_refreshes_last_seen() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.login("a", 5.0)
    assert tracker.count(15.0) == 1
    assert tracker.count(15.5) == 0


def test_session_logout_of_unknown_user_does_not_go_negative() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.logout("ghost", 0.0)
    assert tracker.count(0.0) == 0
    tracker.login("a", 1.0)
    tracker.logout("ghost", 1.0)
    assert tracker.count(1.0) == 1
    tracker.logout("a", 2.0)
    tracker.logout("a", 2.0)
    assert tracker.count(2.0) == 0


def test_session_user_expires_after_timeout() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.login("b", 4.0)
    assert tracker.count(TIMEOUT) == 2  # seen exactly `timeout` ago: not *longer*
    assert tracker.count(TIMEOUT + 0.5) == 1  # a is gone, b is not
    assert tracker.count(14.5) == 0


def test_session_expire_reports_dropped_users() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.login("b", 1.0)
    tracker.heartbeat("b", 5.0)
    assert tracker.expire(12.0) == 1
    assert tracker.expire(12.0) == 0
    assert tracker.expire(16.0) == 1


def test_session_heartbeat_before_deadline_keeps_user() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.heartbeat("a", 8.0)
    assert tracker.count(15.0) == 1  # past the first deadline, not the refreshed one
    tracker.heartbeat("a", 15.0)
    assert tracker.count(25.0) == 1
    assert tracker.count(25.5) == 0


def test_session_heartbeat_does_not_log_in() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.heartbeat("a", 0.0)
    assert tracker.count(0.0) == 0
    tracker.login("b", 1.0)
    tracker.logout("b", 2.0)
    tracker.heartbeat("b", 3.0)
    assert tracker.count(3.0) == 0
    tracker.login("c", 0.0)
    assert tracker.count(11.0) == 0  # c swept
    tracker.heartbeat("c", 11.0)
    assert tracker.count(11.0) == 0


def test_session_heartbeat_does_not_revive_expired_unswept_user() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.heartbeat("a", 11.0)  # expired at 10 (+), but no count() has swept it yet
    assert tracker.count(11.0) == 0


def test_a_heartbeat_on_time_survives_a_read_stamped_later() -> None:
    """Workers replay their own timelines, so a read stamped 20 (a worker ahead) can sweep
    a session whose heartbeat, stamped 8 (a worker behind), has not arrived yet. Judged at
    its own time the heartbeat is on time: it brings the session back, and the count ends
    where the users' own timelines put it. (Found as a fault-free process-mode
    ``aggregate`` run one user short, about one run in 30 on a loaded machine.)"""
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.login("b", 0.0)
    assert tracker.count(20.0) == 0  # the worker ahead: both swept at its time
    tracker.heartbeat("a", 8.0)  # on time (deadline 10): back, until 18
    tracker.heartbeat("b", 10.5)  # late: b stays gone
    assert tracker.count(9.0) == 1
    assert tracker.count(18.0) == 1 and tracker.count(18.5) == 0
    tracker.heartbeat("a", 19.0)  # late for the deadline of 18
    assert tracker.count(19.0) == 0


def test_a_swept_session_is_kept_one_timeout_for_a_late_heartbeat() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    assert tracker.count(10.5) == 0
    assert tracker.count(31.0) == 0  # a timeout past its deadline (10): forgotten
    tracker.heartbeat("a", 5.0)
    assert tracker.count(5.0) == 0


def test_a_stale_heartbeat_does_not_spoil_the_revival_of_a_swept_session() -> None:
    """Found in review: a duplicate or older heartbeat of a swept user emptied the memory
    of the sweep, and the on-time heartbeat after it could not bring the user back."""
    for stale in (5.0, 3.0):
        tracker = SessionTracker(TIMEOUT)
        tracker.login("u", 0.0)
        tracker.heartbeat("u", 5.0)
        assert tracker.count(20.0) == 0
        tracker.heartbeat("u", stale)
        tracker.heartbeat("u", 12.0)  # on time for the deadline of 15
        assert tracker.count(20.0) == 1 and tracker.count(22.5) == 0


def test_whoever_finds_the_expiry_a_heartbeat_on_time_brings_the_session_back() -> None:
    """The end found by a read (count at 15) or by a later heartbeat (at 15) is the same:
    a heartbeat stamped 8, on time for the deadline of 10, comes after either."""
    for finder in ("count", "heartbeat"):
        tracker = SessionTracker(TIMEOUT)
        tracker.login("u", 0.0)
        if finder == "count":
            assert tracker.count(15.0) == 0
        else:
            tracker.heartbeat("u", 15.0)
        tracker.heartbeat("u", 8.0)
        assert tracker.count(15.0) == 1, finder


def test_a_read_clock_far_ahead_does_not_keep_swept_sessions_forever() -> None:
    """One session from a clock far ahead is swept first; the ones swept after it are
    still forgotten a timeout past their deadlines (found in review: they were kept)."""
    tracker = SessionTracker(TIMEOUT)
    tracker.login("ahead", 1e6)
    assert tracker.count(1e6 + TIMEOUT + 1) == 0
    for i in range(1000):
        tracker.login(f"u{i}", float(i % 50))
    assert tracker.count(1e6 + 2 * TIMEOUT + 1) == 0
    assert len(tracker._swept) == 0


def test_session_relogin_after_expiry_counts_again() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    assert tracker.count(11.0) == 0
    tracker.login("a", 12.0)
    assert tracker.count(12.0) == 1
    assert tracker.count(22.0) == 1
    assert tracker.count(22.5) == 0


def test_session_relogin_after_unswept_expiry_counts_once() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.login("a", 20.0)  # expired at 10 but never swept: the old deadline is stale
    assert tracker.count(20.0) == 1
    assert tracker.count(30.0) == 1
    assert tracker.count(30.5) == 0


def test_session_logout_then_relogin_ignores_stale_deadline() -> None:
    tracker = SessionTracker(TIMEOUT)
    tracker.login("a", 0.0)
    tracker.logout("a", 1.0)
    tracker.login("a", 5.0)
    assert tracker.count(12.0) == 1  # the deadline pushed at t=0 must not drop a
    assert tracker.count(15.5) == 0


def test_session_strategy_uses_configured_timeout() -> None:
    strategy = SessionStrategy(StrategyConfig(session_timeout=3.0))
    for mode in sorted(strategy.modes):
        node = strategy.open(mode)
        node.login("a", 0.0)
        assert node.count(3.0) == 1
        assert node.count(3.5) == 0


class SessionModel:
    """The documented contract: online iff last_seen + timeout >= now."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last_seen: dict[str, float] = {}

    def online(self, user: str, now: float) -> bool:
        seen = self.last_seen.get(user)
        return seen is not None and seen + self.timeout >= now

    def login(self, user: str, now: float) -> None:
        self.last_seen[user] = now

    def heartbeat(self, user: str, now: float) -> None:
        if self.online(user, now):
            self.last_seen[user] = now

    def logout(self, user: str, now: float) -> None:
        self.last_seen.pop(user, None)

    def count(self, now: float) -> int:
        return sum(self.online(user, now) for user in self.last_seen)


SessionOp = tuple[str, str, float]

session_ops = st.lists(
    st.tuples(
        st.sampled_from(["login", "logout", "heartbeat", "count"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=6).map(float)
        | st.floats(min_value=0, max_value=6, allow_nan=False),
    ),
    max_size=50,
)
session_timeouts = st.sampled_from([0.0, 1.0, 2.5, 5.0])


def check_against_model(ops: list[SessionOp], timeout: float, sweep_first: bool) -> None:
    tracker = SessionTracker(timeout)
    model = SessionModel(timeout)
    now = 0.0
    for kind, user, dt in ops:
        now += dt
        if kind == "count":
            assert tracker.count(now) == model.count(now), (now, model.last_seen)
            continue
        if kind == "heartbeat" and sweep_first:
            assert tracker.count(now) == model.count(now), (now, model.last_seen)
        getattr(tracker, kind)(user, now)
        getattr(model, kind)(user, now)
    assert tracker.count(now) == model.count(now)
    assert tracker.count(now + timeout) == model.count(now + timeout)
    assert tracker.count(now + timeout + 1.0) == 0


@SIMULATION
@given(ops=session_ops, timeout=session_timeouts)
def test_session_matches_model_when_swept_before_heartbeat(
    ops: list[SessionOp], timeout: float
) -> None:
    """The same model, with every heartbeat preceded by a sweep."""
    check_against_model(ops, timeout, sweep_first=True)


@SIMULATION
@example(ops=[("login", "a", 0.0), ("heartbeat", "a", 2.0), ("count", "a", 0.0)], timeout=1.0)
@given(ops=session_ops, timeout=session_timeouts)
def test_session_matches_model(ops: list[SessionOp], timeout: float) -> None:
    check_against_model(ops, timeout, sweep_first=False)


# ---------------------------------------------------------------------------------------
# 5. registry
# ---------------------------------------------------------------------------------------

BUILTIN_NAMES = ("local", "session", "gcounter", "pncounter")


def test_discover_finds_builtins() -> None:
    errors: list[str] = []
    found = discover(errors)
    for name in BUILTIN_NAMES:
        assert name in found
    assert found["local"] is LocalCounter
    assert found["session"] is SessionStrategy
    assert found["gcounter"] is GCounterStrategy
    assert found["pncounter"] is PNCounterStrategy
    assert list(found)[: len(BUILTIN_NAMES)] == list(BUILTIN_NAMES)  # built-ins first
    for name, cls in found.items():
        assert cls.name == name


def test_resolve_all_returns_every_strategy() -> None:
    available = discover()
    chosen = resolve("all", available)
    assert chosen == list(available.values())
    assert set(BUILTINS) <= set(chosen)
    assert resolve("  all ", available) == chosen


def test_resolve_keeps_given_order() -> None:
    available = discover()
    assert resolve("local,pncounter", available) == [LocalCounter, PNCounterStrategy]
    assert resolve("pncounter,local", available) == [PNCounterStrategy, LocalCounter]
    assert resolve(" session , gcounter ,", available) == [SessionStrategy, GCounterStrategy]
    assert resolve("local,local", available) == [LocalCounter]


@pytest.mark.parametrize("names", ["nope", "local,nope", "nope,pncounter"])
def test_resolve_unknown_name_lists_known(names: str) -> None:
    available = discover()
    with pytest.raises(UnknownStrategy) as info:
        resolve(names, available)
    message = str(info.value)
    assert "nope" in message
    for name in available:
        assert name in message


@pytest.mark.parametrize("names", ["", " , ,"])
def test_resolve_no_name_raises(names: str) -> None:
    with pytest.raises(UnknownStrategy):
        resolve(names, discover())


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda cls: cls.name)
def test_strategy_class_metadata(cls: type[Strategy]) -> None:
    assert isinstance(cls.name, str) and cls.name.strip()
    assert isinstance(cls.summary, str) and cls.summary.strip()
    assert isinstance(cls.consistency, Consistency)
    assert isinstance(cls.modes, frozenset) and cls.modes
    assert all(isinstance(mode, Mode) for mode in cls.modes)
    assert issubclass(cls, SharedStrategy | ReplicatedStrategy | ServiceStrategy | HostedStrategy)
    if issubclass(cls, ServiceStrategy):
        assert cls.service in {"redis", "redis-cluster", "central", "nodes"}


IN_PROCESS = [cls for cls in BUILTINS if not issubclass(cls, ServiceStrategy)]


@pytest.mark.parametrize("cls", IN_PROCESS, ids=lambda cls: cls.name)
def test_strategy_builds_nodes(cls: type[Strategy]) -> None:
    """In-process strategies build working nodes (service strategies are tested against
    real servers in test_networked.py)."""
    strategy = cls(StrategyConfig(nodes=3, session_timeout=60.0))
    if isinstance(strategy, SharedStrategy):
        for mode in sorted(strategy.modes):
            node = strategy.open(mode)
            assert isinstance(node, Node)
            node.login("a", 0.0)
            assert node.count(0.0) == 1
    elif isinstance(strategy, HostedStrategy):
        from countbench.bench.servers.nodes import NodeServer

        hosts = [strategy.host(i, "countbench:build:") for i in range(3)]
        servers = [NodeServer(host.requests) for host in hosts]
        try:
            peers = [server.address for server in servers]
            clients = [strategy.client(host, peers, i) for i, host in enumerate(hosts)]
            for i, client in enumerate(clients):
                for user in range(i + 1):
                    client.login(f"u{i}-{user}", 0.0)
            assert [host.count(0.0) for host in hosts] == [1, 2, 3]  # each its own users
            assert [client.count(0.0) for client in clients] == [6, 6, 6]  # reads ask all
            for client in clients:
                client.close()
        finally:
            for server in servers:
                server.close()
    else:
        assert isinstance(strategy, ReplicatedStrategy)
        for node_id in range(3):
            replica = strategy.replica(node_id)
            assert replica.node_id == node_id
            assert isinstance(replica, Node)
            replica.login("a", 0.0)
            assert replica.count(0.0) == 1
