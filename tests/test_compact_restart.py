"""``compact`` across restarts without persisted state: a restarted replica writes under a
new incarnation key, retires its predecessors itself, takes over the retirements a dead
owner left unfinished, and the state shrinks back to one entry per live replica, with
nothing counted twice and nothing lost that had left the crashed node."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countbench.strategies.base import Message
from countbench.strategies.compact import CompactCounter, CompactReplica, Key, Marker

TTL = 1_000.0  # longer than any run below: no marker expires while copies are in flight


def gossip(replicas: list[CompactReplica], now: float, rounds: int = 1) -> None:
    """Every replica sends its state to every other, ``rounds`` times."""
    for _ in range(rounds):
        outbox = [m for r in replicas for m in r.sync(now)]
        for message in outbox:
            for replica in replicas:
                if replica.node_id != message.src:
                    replica.receive(message, now)


def settle(replicas: list[CompactReplica], now: float, rounds: int = 12) -> float:
    """Gossip rounds far enough apart for performed markers to expire."""
    for _ in range(rounds):
        now += TTL + 1
        gossip(replicas, now)
    return now


def keys(replica: CompactReplica) -> list[Key]:
    return sorted(replica.state.entries)


def test_a_restarted_replica_writes_a_new_entry_and_folds_its_predecessor() -> None:
    a, b = CompactReplica(0, TTL), CompactReplica(1, TTL)
    for _ in range(5):
        a.login("u", 1.0)
    b.login("v", 1.0)
    gossip([a, b], 2.0)
    assert keys(b) == [(0, 1.0), (1, 1.0)]
    a = CompactReplica(0, TTL)  # restarted empty: counts from 0 again, in a new entry
    a.login("w", 3.0)
    a.logout("w", 3.5)
    a.login("x", 4.0)
    assert a.state.entries == {(0, 3.0): (2, 1)}
    assert b.count(4.0) == 6
    gossip([a, b], 5.0)
    # The predecessor (0, 1.0) is being retired by its successor, not counted twice.
    assert a.state.markers[(0, 1.0)].owner == (0, 3.0)
    assert {a.count(5.0), b.count(5.0)} == {7}
    settle([a, b], 5.0)
    for replica in (a, b):
        assert keys(replica) == [(0, 3.0), (1, 1.0)]
        assert not replica.state.markers
        assert replica.count(0.0) == 7
    assert a.state.entries[(0, 3.0)] == (7, 1)  # the predecessor's 5 logins folded in


def test_a_dead_owners_unfinished_retirement_is_taken_over() -> None:
    a, b, c = CompactReplica(0, TTL), CompactReplica(1, TTL), CompactReplica(2, TTL)
    a.login("u", 1.0)
    b.login("v", 1.0)
    c.login("w", 1.0)
    gossip([a, b, c], 1.0)
    a.retire(2, 2.0)  # c left; a starts folding it ...
    gossip([a, b], 2.0)  # ... b acknowledges it ...
    assert b.state.markers[(2, 1.0)].owner == (0, 1.0)
    a = CompactReplica(0, TTL)  # ... and a crashes before the fold: nobody would do it
    a.login("x", 3.0)
    for step in range(3, 10):  # a's successor folds a, then takes the fold of c over
        gossip([a, b], float(step))
    marker = b.state.markers[(2, 1.0)]
    assert (marker.owner, marker.generation, marker.performed) == ((0, 3.0), 1, True)
    now = settle([a, b], 10.0)
    for replica in (a, b):
        assert keys(replica) == [(0, 3.0), (1, 1.0)]
        assert not replica.state.markers
        assert replica.count(now) == 4
    assert a.state.entries[(0, 3.0)] == (3, 0)  # its own, its predecessor's and c's login


def test_retire_retires_every_incarnation_of_an_id() -> None:
    a, b = CompactReplica(0, TTL), CompactReplica(1, TTL)
    b.login("u", 1.0)
    gossip([a, b], 1.0)
    b = CompactReplica(1, TTL)  # restarted, then left for good before folding its past
    b.login("v", 2.0)
    gossip([a, b], 2.0)
    a.retire(1, 3.0)
    assert set(a.retiring()) == {(1, 1.0), (1, 2.0)}
    assert a.state.markers[(1, 2.0)].owner == (0, 1.0)
    now = settle([a], 3.0)
    assert keys(a) == [(0, 1.0)] and not a.state.markers
    assert a.count(now) == 2
    with pytest.raises(ValueError, match="retire itself"):
        a.retire(0, now)


def test_retire_of_an_id_not_known_yet_waits_for_its_entry() -> None:
    a, b = CompactReplica(0, TTL), CompactReplica(1, TTL)
    a.login("u", 1.0)
    b.login("v", 1.0)
    a.retire(1, 2.0)  # b's last state has not reached a yet
    assert a.awaiting == (1,) and not a.state.markers
    (last,) = b.sync(2.0)
    a.receive(last, 3.0)
    assert a.awaiting == () and a.state.markers[(1, 1.0)].owner == (0, 1.0)
    now = settle([a], 3.0)
    assert keys(a) == [(0, 1.0)] and a.count(now) == 2


def test_a_retired_incarnation_cannot_write() -> None:
    state = CompactCounter({(1, 1.0): (1, 0)}, {(1, 1.0): Marker((0, 1.0), performed=True)})
    assert state.value() == 0  # held until its marker goes, not counted
    with pytest.raises(ValueError, match=r"1@1\.0 was retired"):
        state.add((1, 1.0), positive=1)


def test_late_copies_of_a_dead_owners_own_fold_are_not_counted_twice() -> None:
    """The dead owner performed its fold, but the state carrying it was still in flight
    when its successor took the retirement over: the late copy lands in the dead owner's
    entry, already folded away, so nothing counts twice."""
    a, b, c = CompactReplica(0, TTL), CompactReplica(1, TTL), CompactReplica(2, TTL)
    for replica in (a, b, c):
        replica.login("u", 1.0)
    gossip([a, b, c], 1.0)
    a.retire(2, 2.0)
    gossip([a, b], 2.0, rounds=2)  # b acknowledges; a performs on hearing it
    (late,) = a.sync(3.0)  # a's fold of c, never delivered before a crashes
    assert a.state.markers[(2, 1.0)].performed and a.state.entries[(0, 1.0)] == (2, 0)
    a = CompactReplica(0, TTL)
    a.login("x", 4.0)
    for step in range(5, 15):  # the successor folds a, then takes the fold of c over
        gossip([a, b], float(step))
    assert b.state.markers[(2, 1.0)].generation == 1
    assert b.state.markers[(2, 1.0)].performed
    assert {a.count(15.0), b.count(15.0)} == {4}
    b.receive(late, 15.0)  # within the markers' time to live, as the contract asks
    assert {a.count(15.0), b.count(15.0)} == {4}
    now = settle([a, b], 15.0)
    assert {a.count(now), b.count(now)} == {4}
    assert keys(b) == [(0, 4.0), (1, 1.0)] and not b.state.markers


def test_a_fold_learnt_after_its_ttl_is_acknowledged_before_it_is_dropped() -> None:
    """The last replica to learn of a fold sends its ``done`` before dropping the marker, so
    the others can drop theirs; a late copy that lists it is not taken back."""
    a, b, c = CompactReplica(0, TTL), CompactReplica(1, TTL), CompactReplica(2, TTL)
    for replica in (a, b, c):
        replica.login("u", 1.0)
    gossip([a, b, c], 1.0)
    a.retire(2, 2.0)
    gossip([a, b], 2.0, rounds=2)  # a performs; b does not hear of it ...
    now = 2.0 + TTL + 1  # ... until after the TTL
    (performed,) = a.sync(now)
    b.receive(performed, now)
    assert b.state.markers[(2, 1.0)].done == {(0, 1.0), (1, 1.0)}  # kept: a lacks b's done
    (acknowledged,) = b.sync(now)
    a.receive(acknowledged, now)
    assert not a.state.markers  # a knows everyone is done, and everyone knows a is
    b.sync(now)
    assert not b.state.markers
    b.receive(acknowledged, now + 1)  # a late copy listing b: not taken back
    assert not b.state.markers
    b.receive(performed, now + 1)  # one that does not list b: b acknowledges again ...
    (again,) = b.sync(now + 1)
    a.receive(again, now + 1)  # ... and a, done already, does not take it back either
    b.sync(now + 1)
    assert not a.state.markers and not b.state.markers
    assert {a.count(now), b.count(now)} == {3}


# -- the property: random runs with restarts --------------------------------------------------

NODES = 3
OPS = st.lists(
    st.tuples(
        st.integers(0, NODES - 1),
        st.sampled_from(["login", "login", "logout", "sync", "deliver", "deliver", "crash"]),
    ),
    min_size=1,
    max_size=60,
)


@dataclass
class Cluster:
    """Replicas, the messages in flight (destination, message), and what was accepted."""

    rng: random.Random
    replicas: list[CompactReplica] = field(default_factory=list)
    flight: list[tuple[int, Message]] = field(default_factory=list)
    logins: int = 0  # accepted by any incarnation
    logouts: int = 0
    balance: list[int] = field(default_factory=lambda: [0] * NODES)  # live incarnation's
    sent: list[int] = field(default_factory=lambda: [0] * NODES)  # ... as of its last sync
    kept: int = 0  # what the dead incarnations had sent

    def __post_init__(self) -> None:
        self.replicas = [CompactReplica(i, TTL) for i in range(NODES)]

    def step(self, node: int, kind: str, now: float) -> None:
        replica = self.replicas[node]
        if kind == "login":
            replica.login("u", now)
            self.logins += 1
            self.balance[node] += 1
        elif kind == "logout":
            replica.logout("u", now)
            self.logouts += 1
            self.balance[node] -= 1
        elif kind == "sync":
            for message in replica.sync(now):
                for dst in range(NODES):
                    if dst != node:
                        copies = 2 if self.rng.random() < 0.3 else 1  # duplicates
                        self.flight += [(dst, message)] * copies
            self.sent[node] = self.balance[node]
        elif kind == "deliver" and self.flight:
            dst, message = self.flight.pop(self.rng.randrange(len(self.flight)))
            self.replicas[dst].receive(message, now)
        elif kind == "crash":
            # Everything in flight arrives and the others exchange their states once: what
            # the node sent survives it (were every holder of a change to crash before
            # passing it on, it would be lost, rightly); what it never sent is lost.
            for dst, message in self.flight:
                self.replicas[dst].receive(message, now)
            self.flight = []
            gossip([r for r in self.replicas if r.node_id != node], now)
            for other in range(NODES):
                if other != node:
                    self.sent[other] = self.balance[other]
            self.kept += self.sent[node]
            self.balance[node] = self.sent[node] = 0
            self.replicas[node] = CompactReplica(node, TTL)

    def check_nothing_counted_twice(self) -> None:
        """What a replica counts (its entries, a folded one left out: it is held until
        its marker goes, and its P and N are in its heir's) never exceeds what was done."""
        for replica in self.replicas:
            state = replica.state
            counted = [pn for key, pn in state.entries.items() if not state.folded(key)]
            assert sum(p for p, _ in counted) <= self.logins
            assert sum(n for _, n in counted) <= self.logouts


@settings(max_examples=150, deadline=None)
@given(ops=OPS, seed=st.integers(0, 2**16))
def test_restarts_lose_only_what_never_left_and_the_state_shrinks_back(
    ops: list[tuple[int, str]], seed: int
) -> None:
    cluster = Cluster(random.Random(seed))
    for step, (node, kind) in enumerate(ops):
        cluster.step(node, kind, float(step))
        cluster.check_nothing_counted_twice()
    now = float(len(ops))
    cluster.rng.shuffle(cluster.flight)
    for dst, message in cluster.flight:  # whatever is still in flight arrives
        cluster.replicas[dst].receive(message, now)
    replicas = cluster.replicas
    now = settle(replicas, now, rounds=40)  # chains of takeovers take a few rounds each
    cluster.check_nothing_counted_twice()
    expected = cluster.kept + sum(cluster.balance)
    assert [r.state.value() for r in replicas] == [expected] * NODES
    live = sorted(r.incarnation(now) for r in replicas)
    for replica in replicas:
        assert keys(replica) == live  # one entry per live replica: predecessors folded
        assert not replica.state.markers and replica.awaiting == ()
        assert replica.state == replicas[0].state


def test_a_held_folded_entry_is_not_counted_twice() -> None:
    """Found by the property above: a successor folds its predecessor's login into its own
    entry; the predecessor's entry stays, marked performed, until the marker expires. The
    count is the login once, and the check counts it once."""
    cluster = Cluster(random.Random(0))
    ops = [(0, "login"), (1, "crash"), (0, "crash"), (1, "sync"), (2, "crash"), (1, "sync")]
    ops.append((1, "crash"))
    for step, (node, kind) in enumerate(ops):
        cluster.step(node, kind, float(step))
    state = cluster.replicas[0].state
    assert state.folded((0, 0.0)) and state.entries[(0, 0.0)] == state.entries[(0, 4.0)] == (1, 0)
    assert state.value() == 1
    cluster.check_nothing_counted_twice()
    state.markers[(0, 0.0)].performed = False  # as if the fold had not marked its source
    with pytest.raises(AssertionError):
        cluster.check_nothing_counted_twice()


def test_a_late_fold_by_a_dead_owner_loses_to_the_takeover() -> None:
    """The owner folds K, dies before its fold reaches anyone, and its successor takes
    K's retirement over; the dead owner's delayed message must not drop K's value."""
    n0, owner, n2 = CompactReplica(0, TTL), CompactReplica(1, TTL), CompactReplica(2, TTL)
    now = 1.0
    for user in range(5):
        n2.login(f"u{user}", now)
    for _ in range(2):
        now += 1
        gossip([n0, owner, n2], now)
    now += 1
    owner.retire(2, now)
    for src, dst in ((owner, n0), (n0, owner)):
        now += 1
        for message in src.sync(now):
            dst.receive(message, now)
    now += 1
    delayed = owner.sync(now)  # carries the performed fold of node 2's key
    assert owner.state.markers[(2, 1.0)].performed
    now += 1
    successor = CompactReplica(1, TTL)  # the owner restarted empty
    late_sent = False
    for _ in range(8):
        for src, dst in ((n0, successor), (successor, n0)):
            now += 1
            for message in src.sync(now):
                dst.receive(message, now)
        marker = n0.state.markers.get((2, 1.0))
        if not late_sent and marker is not None and marker.generation == 1:
            assert not marker.performed
            now += 1
            for message in delayed:
                n0.receive(message, now)
            late_sent = True
        assert n0.count(now) <= 5 and successor.count(now) <= 5  # never counted twice
    assert late_sent
    assert n0.count(now) == successor.count(now) == 5


def test_a_takeover_meeting_a_performed_fold_merges_the_same_in_any_order() -> None:
    """A late performed fold of generation 0, a takeover of generation 1 and the key's
    entry, merged in either grouping: the same state and the same count (the takeover
    wins, so the key counts). Merge used to delete the entry when it met the performed
    marker first, and could not bring it back."""
    key, owner = (5, 0.0), (0, 0.0)
    takeover = CompactCounter({}, {key: Marker(owner, performed=False, at=501.0, generation=1)})
    entry = CompactCounter({key: (3, 1)}, {})
    fold = CompactCounter({}, {key: Marker(owner, performed=True, at=500.0, generation=0)})

    def merged(a: CompactCounter, b: CompactCounter) -> CompactCounter:
        copy = a.copy()
        copy.merge(b)
        return copy

    left = merged(merged(takeover, entry), fold)
    right = merged(takeover, merged(entry, fold))
    assert left == right
    assert left.value() == right.value() == 2
    assert merged(entry, fold).value() == 0  # folded: held, not counted
