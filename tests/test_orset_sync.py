"""``orset``'s digest sync: what travels, and how a replica that missed something pulls it."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from countbench.strategies.base import Message
from countbench.strategies.orset import ORSetReplica, WriterLog, decode_answer, decode_sync

TIMEOUT = 100.0


def deliver(replicas: list[ORSetReplica], messages: list[Message], now: float) -> None:
    """Every message to its destination (a broadcast to every other replica), and every
    answer after it, until none is left."""
    pending = list(messages)
    while pending:
        message = pending.pop(0)
        for replica in replicas:
            if replica.node_id == message.src:
                continue
            if message.dst is None or message.dst == replica.node_id:
                pending.extend(replica.receive(message, now))


def round_(replicas: list[ORSetReplica], now: float) -> None:
    for replica in replicas:
        deliver(replicas, replica.sync(now), now)


def cluster(n: int) -> list[ORSetReplica]:
    return [ORSetReplica(i, TIMEOUT) for i in range(n)]


def answer_rows(message: Message) -> list[tuple[object, ...]]:
    assert message.body[:1] == b"U"
    return [row for chunk in decode_answer(message.body) for row in chunk[3]]


def test_a_sync_is_a_digest_and_the_senders_news_never_the_whole_state() -> None:
    sizes = []
    for users in (10, 1000):
        a, b = cluster(2)
        for u in range(users):
            a.login(f"u{u}", 1.0)
        round_([a, b], 1.0)
        assert b.count(1.0) == users
        [quiet] = a.sync(2.0)  # nothing new since the last sync: the digest alone
        assert not quiet.informs and quiet.dst is None
        sizes.append(len(quiet.body))
    assert sizes[1] <= sizes[0] + 2  # the update number's digits: 10 -> 1000


def test_an_answer_holds_exactly_what_the_digest_lacks() -> None:
    a, b = cluster(2)
    a.login("ann", 1.0)
    round_([a, b], 1.0)
    [question] = b.sync(2.0)
    [answer] = a.receive(question, 2.0)
    assert answer.dst == b.node_id and answer.informs
    assert answer_rows(answer) == []  # b holds everything a does
    a.login("bob", 3.0)
    [answer] = a.receive(b.sync(3.0)[0], 3.0)
    [row] = answer_rows(answer)
    assert row[3] == "bob"


def test_a_lost_push_is_pulled_at_the_next_sync() -> None:
    a, b = cluster(2)
    a.login("ann", 1.0)
    a.heartbeat("ann", 2.0)
    a.sync(2.0)  # its news is lost on the way
    assert b.count(2.0) == 0
    deliver([a, b], b.sync(3.0), 3.0)  # b's digest; a's answer
    assert b.count(3.0) == 1
    assert b.state == a.state


def test_a_replica_restarted_empty_pulls_the_state_back() -> None:
    replicas = cluster(3)
    for i, replica in enumerate(replicas):
        for u in range(5):
            replica.login(f"n{i}-u{u}", 1.0)
    round_(replicas, 1.0)
    replicas[1] = ORSetReplica(1, TIMEOUT)  # lost its state
    assert replicas[1].count(5.0) == 0
    deliver(replicas, replicas[1].sync(5.0), 5.0)
    assert replicas[1].count(5.0) == 15
    assert replicas[1].state == replicas[0].state
    replicas[1].login("new", 6.0)  # a fresh incarnation: fresh tags, nothing reused
    round_(replicas, 6.0)
    assert [r.count(6.0) for r in replicas] == [16, 16, 16]


def test_digests_forget_a_writer_once_all_its_updates_are_garbage() -> None:
    a, b = cluster(2)
    a.login("ann", 1.0)
    round_([a, b], 1.0)
    writer = a.writer
    assert writer in decode_sync(b.sync(2.0)[0].body)[0]
    later = 1.0 + 3 * TIMEOUT  # the lease ran out, and a further timeout
    for step in range(3):  # each sync sweeps one writer's updates
        round_([a, b], later + step)
    assert b.count(later) == 0
    assert writer not in b.logs
    assert writer not in decode_sync(b.sync(later + 5)[0].body)[0]


def test_a_writer_log_serves_in_number_order_whatever_the_arrival_order() -> None:
    def row(tag: int, number: int) -> tuple[object, ...]:
        return (0, 1.0, tag, f"u{tag}", 50.0 + number, False, number)

    log = WriterLog()
    for tag, number in [(1, 5), (2, 2), (3, 9), (2, 7), (1, 1)]:  # (1, 1): older than held
        log.add((0, 1.0, tag), row(tag, number))
    assert [r[6] for r in log.since(0)] == [5, 7, 9]
    assert [r[6] for r in log.since(5)] == [7, 9]
    assert log.since(9) == []
    assert log.top == 9
    log.sweep({(0, 1.0, 2): ("u2", 57.0, False)})
    assert [r[6] for r in log.since(0)] == [7]


OPS = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["login", "logout", "heartbeat", "sync"]),
        st.integers(0, 4),
        st.booleans(),
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, seed=st.integers(0, 2**16))
def test_any_losses_then_two_rounds_converge(
    ops: list[tuple[int, str, int, bool]], seed: int
) -> None:
    """Messages lost, duplicated and reordered at random while the users come and go; then
    two rounds where every sync and every answer arrives: every replica holds the same set."""
    rng = random.Random(seed)
    replicas = cluster(3)
    in_flight: list[tuple[int, Message]] = []
    for step, (node, kind, user, lose) in enumerate(ops):
        now = float(step)
        if kind == "sync":
            if not lose:
                in_flight += [(r.node_id, m) for m in replicas[node].sync(now) for r in replicas]
            else:
                replicas[node].sync(now)
        else:
            getattr(replicas[node], kind)(f"u{user}", now)
        rng.shuffle(in_flight)
        for _ in range(rng.randint(0, len(in_flight))):
            target, message = in_flight.pop()
            if target == message.src or message.dst not in (None, target):
                continue
            for answer in replicas[target].receive(message, now):
                if rng.random() < 0.7:
                    in_flight.append((answer.dst if answer.dst is not None else 0, answer))
            if rng.random() < 0.2:
                in_flight.append((target, message))  # delivered again later
    end = float(len(ops))
    round_(replicas, end)
    round_(replicas, end)
    counts = [r.count(end) for r in replicas]
    assert min(counts) == max(counts), counts
    assert replicas[0].state == replicas[1].state == replicas[2].state
