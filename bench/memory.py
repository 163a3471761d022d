"""Memory per online user, and the size of replicated state, measured in a fresh process
(``python -m countbench.bench.memory``): RSS (psutil) and traced bytes (tracemalloc) of a
strategy's nodes after N logins, Redis's ``used_memory`` for a Redis strategy, and for a
replicated strategy the state a newcomer catches up, the sync bytes per tick, the merge
time and what churn leaves behind. What each figure is: ``docs/memory.md``.

Bad input raises :class:`ScaleUsageError` (one line); in the child process it is printed
on stderr with exit status 2, and :func:`measure_memory` raises it again in the parent.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..strategies.base import (
    Message,
    Mode,
    Node,
    Replica,
    ReplicatedStrategy,
    Retiring,
    ServiceStrategy,
    SharedStrategy,
    Strategy,
    StrategyConfig,
)
from ..strategies.errors import UsageError
from ..strategies.gcounter import forget_received
from .workload import MAX_NODES, MAX_USERS

T = TypeVar("T")

NOW = 1.0  # every login happens at this instant: no session expires during a measurement
DEFAULT_NODES = 3
USERS_PER_NODE = 1_000
MERGE_BUDGET = 0.2  # seconds of repeated merges per nodes point
MERGE_REPEATS = (5, 2_000)  # at least, at most
REDIS_PIPELINE = 1_000
CHILD_TIMEOUT = 1_800.0
MAX_RETIRED = 100_000
MAX_ROUNDS = 10  # sync rounds an exchange runs at most
REPLY_DEPTH = 4  # replies to replies to ... followed this deep
SYNC_TICKS = 8  # sync ticks sync bytes are averaged over (a full state every 4th: counted)
CHURN_SETTLE = 120.0  # seconds the clock moves after the churn: past compact's marker TTL


class ScaleUsageError(ValueError, UsageError):
    """Bad input to a memory or scale measurement: reported as one line (exit status 2)."""


# -- the parent side: one fresh process per measurement ------------------------------------


def measure_memory(strategy_name: str, users: int, nodes: int = DEFAULT_NODES) -> dict[str, Any]:
    """Memory of ``strategy_name`` holding ``users`` online users, measured in a fresh
    subprocess (see the module docstring for what is measured)."""
    _check_count("users", users, MAX_USERS)
    _check_count("nodes", nodes, MAX_NODES)
    args = ["--strategy", strategy_name, "--users", str(users), "--nodes", str(nodes)]
    return _child(args)


def measure_nodes(
    strategy_name: str, nodes: int, users_per_node: int = USERS_PER_NODE
) -> dict[str, Any]:
    """State, sync message and merge cost of a replicated strategy at ``nodes`` replicas,
    each of which accepted ``users_per_node`` logins (so that only the number of replicas
    changes along a curve), measured in a fresh subprocess."""
    _check_count("nodes", nodes, MAX_NODES)
    _check_count("users", users_per_node * nodes, MAX_USERS)
    args = ["--strategy", strategy_name, "--users", str(users_per_node), "--nodes", str(nodes)]
    return _child([*args, "--nodes-curve"])


def measure_churn(
    strategy_name: str,
    retired: int,
    nodes: int = DEFAULT_NODES,
    users_per_node: int = USERS_PER_NODE,
) -> dict[str, Any]:
    """State and sync bytes of a replicated strategy after ``retired`` replicas left and as
    many joined (see the module docstring), measured in a fresh subprocess."""
    _check_retired(retired)
    _check_count("nodes", nodes, MAX_NODES)
    _check_count("users", users_per_node, MAX_USERS)
    args = ["--strategy", strategy_name, "--users", str(users_per_node), "--nodes", str(nodes)]
    return _child([*args, "--churn", str(retired)])


def _check_retired(retired: int) -> None:
    if isinstance(retired, bool) or not isinstance(retired, int) or retired < 0:
        raise ScaleUsageError(f"retired must be a whole number >= 0, not {retired!r}")
    if retired > MAX_RETIRED:
        raise ScaleUsageError(f"retired must be at most {MAX_RETIRED:,}, not {retired:,}")


def _child(args: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "countbench.bench.memory", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=CHILD_TIMEOUT
    )
    lines = done.stderr.strip().splitlines()
    last = lines[-1] if lines else f"exit status {done.returncode}"
    if done.returncode == 2:
        raise ScaleUsageError(last)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement failed: {last}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _check_count(name: str, value: int, top: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ScaleUsageError(f"{name} must be a whole number in [1, {top:,}], not {value!r}")


def strategy_class(name: str) -> type[Strategy]:
    """The strategy called ``name`` (built-in or plug-in), or :class:`ScaleUsageError`."""
    from ..strategies.registry import discover

    available = discover()
    cls = available.get(name.strip())
    if cls is None:
        raise ScaleUsageError(f"unknown strategy {name!r} (known: {', '.join(available)})")
    return cls


def measurable(cls: type[Strategy]) -> str:
    """``"shared"``, ``"replicated"`` or ``"redis"``; :class:`ScaleUsageError` otherwise."""
    if issubclass(cls, SharedStrategy):
        return "shared"
    if issubclass(cls, ReplicatedStrategy):
        return "replicated"
    if issubclass(cls, ServiceStrategy) and cls.service == "redis":
        return "redis"
    raise ScaleUsageError(
        f"strategy {cls.name!r} keeps its state in nodes that serve each other: memory is "
        "measured for in-process and Redis strategies only"
    )


# -- the child side ------------------------------------------------------------------------


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _build(cls: type[Strategy], nodes: int) -> list[Node]:
    config = StrategyConfig(nodes=nodes)
    strategy = cls(config)
    if isinstance(strategy, SharedStrategy):
        mode = Mode.THREAD if Mode.THREAD in cls.modes else Mode.ASYNCIO
        return [strategy.open(mode)]
    if isinstance(strategy, ReplicatedStrategy):
        return [strategy.replica(i) for i in range(nodes)]
    raise ScaleUsageError(f"strategy {cls.name!r} has no in-process node")  # pragma: no cover


def _login_all(targets: Sequence[Node], users: int) -> None:
    k = len(targets)
    for i in range(users):
        targets[i % k].login(f"user-{i}", NOW)


def _recipients(members: Mapping[int, Replica], message: Message, hub: int | None) -> list[int]:
    """Who gets ``message`` in an exchange among ``members``: its ``dst`` (if a member);
    for a broadcast (``dst`` None) every other member, or only the hub when there is one
    and the sender is not it."""
    if message.dst is not None:
        return [message.dst] if message.dst in members and message.dst != message.src else []
    if hub is not None and message.src != hub:
        return [hub]
    return [node_id for node_id in members if node_id != message.src]


def _deliver(
    members: Mapping[int, Replica],
    message: Message,
    now: float,
    hub: int | None,
    sent: list[Message],
    delivered: Callable[[int, Message], None] | None = None,
    depth: int = 0,
) -> None:
    """``message`` to its recipients, each reply (``receive``'s answer) at once to its
    own, and so on, :data:`REPLY_DEPTH` deep; every message sent is added to ``sent``
    (``message`` first) and ``delivered(recipient, message)`` is told of each delivery."""
    sent.append(message)
    for target in _recipients(members, message, hub):
        if delivered is not None:
            delivered(target, message)
        replies = members[target].receive(message, now)
        if depth < REPLY_DEPTH:
            for reply in replies:
                _deliver(members, reply, now, hub, sent, delivered, depth + 1)


def exchange(
    replicas: Sequence[Replica],
    now: float,
    *,
    hub: Replica | None = None,
    watch: Replica | None = None,
    rounds: int = MAX_ROUNDS,
) -> list[Message]:
    """Run sync rounds among ``replicas`` until they have nothing more to say; return the
    distinct messages ``watch`` received, in order.

    A round: every replica (the hub last) calls ``sync(now)``; every message and every
    reply is delivered at once (see :func:`_recipients`; with a ``hub``, a star: only the
    hub's broadcasts reach everyone, so a round costs O(replicas) deliveries). It stops
    after ``rounds`` rounds, or after a round in which no message was new to the exchange
    (the same sender, addressee and bytes said before, or nothing at all) while every
    replica gives the same ``count(now)``. Protocol-neutral: state-based replicas settle
    in three rounds, delta or pull protocols in as many as their periodic full state or
    their digest and reply take. A message ``watch`` received twice, byte for byte, is
    listed once (a repeat brings an idempotent merge nothing)."""
    members = {replica.node_id: replica for replica in replicas}
    if len(members) != len(replicas):
        raise ValueError("two replicas of an exchange share an id")
    hub_id = None if hub is None else hub.node_id
    order = [r for r in replicas if r is not hub] + ([hub] if hub is not None else [])
    watched = None if watch is None else watch.node_id
    heard: set[Message] = set()  # a message is equal to another of the same fields
    caught: set[Message] = set()
    journal: list[Message] = []

    def delivered(target: int, message: Message) -> None:
        if target == watched and message not in caught:
            caught.add(message)
            journal.append(message)

    for _ in range(rounds):
        said: list[Message] = []
        for replica in order:
            for message in replica.sync(now):
                _deliver(members, message, now, hub_id, said, delivered)
        new = set(said) - heard
        heard |= new
        if not new and len({replica.count(now) for replica in replicas}) <= 1:
            break
    return journal


def spread(replicas: Sequence[Replica]) -> None:
    """Bring every replica to the full state: an :func:`exchange` with replica 0 as hub."""
    if replicas:
        exchange(replicas, NOW, hub=replicas[0])


def sync_cost(
    replicas: Sequence[Replica], replica: Replica, now: float, ticks: int = SYNC_TICKS
) -> tuple[float, float]:
    """(bytes, messages) ``replica`` of a settled cluster sends per sync tick, the replies
    its messages trigger included, as a mean over ``ticks`` ticks: each tick it syncs and
    every message goes to its recipients among ``replicas`` (a broadcast to all the
    others), each reply to its own (see :func:`_deliver`)."""
    members = {member.node_id: member for member in replicas}
    sent: list[Message] = []
    for _ in range(ticks):
        for message in replica.sync(now):
            _deliver(members, message, now, None, sent)
    return _per(sum(len(m.body) for m in sent), ticks), _per(len(sent), ticks)


def catch_up(
    strategy: ReplicatedStrategy, node_id: int, peer: Replica, now: float
) -> list[Message]:
    """The messages that bring a fresh replica ``node_id`` to ``peer``'s state: an
    :func:`exchange` of the two, and what the fresh one received (distinct, in order)."""
    fresh = strategy.replica(node_id)
    return exchange([peer, fresh], now, watch=fresh)


def _take_in(
    strategy: ReplicatedStrategy, node_id: int, messages: Sequence[Message], now: float
) -> Replica:
    """A fresh replica ``node_id`` after it received ``messages`` (its replies dropped)."""
    replica = strategy.replica(node_id)
    for message in messages:
        replica.receive(message, now)
    return replica


def _merge_times(
    strategy: ReplicatedStrategy, node_id: int, messages: Sequence[Message], now: float
) -> list[float]:
    """Seconds a fresh replica takes to receive ``messages``, over repeats (each on a new
    replica built untimed, with no parse of an earlier repeat remembered)."""
    times: list[float] = []
    spent = 0.0
    while len(times) < MERGE_REPEATS[1] and (len(times) < MERGE_REPEATS[0] or spent < MERGE_BUDGET):
        forget_received()
        replica = strategy.replica(node_id)
        started = time.perf_counter()
        for message in messages:
            replica.receive(message, now)
        took = time.perf_counter() - started
        times.append(took)
        spent += took
    return times


def _populate(cls: type[Strategy], users: int, nodes: int) -> tuple[list[Node], int]:
    """Fresh nodes holding ``users`` logged-in users (replicas spread), and the count."""
    built = _build(cls, nodes)
    _login_all(built, users)
    if issubclass(cls, ReplicatedStrategy):
        spread([_replica(node) for node in built])
    return built, built[0].count(NOW)


def _replica(node: Node) -> Replica:
    if not (hasattr(node, "sync") and hasattr(node, "receive")):  # pragma: no cover
        raise TypeError(f"{node!r} is not a replica")
    return node  # type: ignore[return-value]


def _warm_up(cls: type[Strategy]) -> None:
    """Run every code path once, untraced, so one-time caches (imports, compiled patterns,
    the first JSON decoder use) are not counted as the structure's bytes."""
    _populate(cls, 4, 2)


def _traced(action: Callable[[], T]) -> tuple[int, int, T]:
    """(bytes still allocated after ``action``, peak bytes during it, its result); the
    replicas' parse cache of the last message received is not counted (and is emptied
    before too, so that ``action`` cannot share a parse made before the tracing)."""
    forget_received()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = action()
        forget_received()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - base, peak - base, kept


def _per(total: float, n: int) -> float:
    return total / n if n else 0.0


def _newcomer(cls: type[Strategy], nodes: int) -> tuple[ReplicatedStrategy, int]:
    """The strategy of a cluster of ``nodes`` replicas with room for one more, and the
    id of that newcomer (``nodes``: a fresh id, no restart of an existing replica)."""
    strategy = cls(StrategyConfig(nodes=nodes + 1))
    assert isinstance(strategy, ReplicatedStrategy)
    return strategy, nodes


def _caught_up(
    strategy: ReplicatedStrategy, node_id: int, peer: Replica, now: float
) -> tuple[int, Replica, list[Message]]:
    """(traced bytes of a fresh replica ``node_id`` once it holds ``peer``'s state, that
    replica, and the messages that brought it there: :func:`catch_up`)."""
    messages = catch_up(strategy, node_id, peer, now)
    traced, _, replica = _traced(lambda: _take_in(strategy, node_id, messages, now))
    return traced, replica, messages


def _one_replica(
    cls: type[Strategy], nodes: int, peer: Replica, now: float = NOW
) -> tuple[int, Replica, ReplicatedStrategy, list[Message]]:
    """:func:`_caught_up` for the newcomer of a cluster of ``nodes``, and its strategy."""
    strategy, node_id = _newcomer(cls, nodes)
    traced, replica, messages = _caught_up(strategy, node_id, peer, now)
    return traced, replica, strategy, messages


def measure_users_here(name: str, users: int, nodes: int) -> dict[str, Any]:
    """The child's work for :func:`measure_memory`."""
    _check_count("users", users, MAX_USERS)
    _check_count("nodes", nodes, MAX_NODES)
    cls = strategy_class(name)
    kind = measurable(cls)
    if kind == "redis":
        return _measure_redis(cls, users)
    if kind == "shared":
        nodes = 1
    gc.collect()
    rss_before = _rss()
    built, count = _populate(cls, users, nodes)
    gc.collect()
    rss_after = _rss()
    del built
    _warm_up(cls)
    traced, peak, kept = _traced(lambda: _populate(cls, users, nodes))
    result: dict[str, Any] = {
        "strategy": cls.name,
        "kind": kind,
        "users": users,
        "nodes": nodes,
        "count": count,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_bytes": rss_after - rss_before,
        "rss_bytes_per_user": _per(rss_after - rss_before, users),
        "traced_bytes": traced,
        "traced_peak_bytes": peak,
        "traced_bytes_per_user": _per(traced, users),
    }
    if kind == "replicated":
        replicas = [_replica(node) for node in kept[0]]
        sync_bytes, sync_messages = sync_cost(replicas, replicas[-1], NOW)
        state_bytes, newcomer, _, _ = _one_replica(cls, nodes, replicas[0])
        result["state_bytes"] = state_bytes
        result["newcomer_count"] = newcomer.count(NOW)
        result["sync_messages"] = sync_messages
        result["sync_bytes"] = sync_bytes
    return result


def measure_nodes_here(name: str, nodes: int, users_per_node: int) -> dict[str, Any]:
    """The child's work for :func:`measure_nodes`."""
    _check_count("nodes", nodes, MAX_NODES)
    users = users_per_node * nodes
    _check_count("users", users, MAX_USERS)
    cls = strategy_class(name)
    if measurable(cls) != "replicated":
        raise ScaleUsageError(
            f"nodes=... needs a replicated strategy; {cls.name!r} is not replicated"
        )
    _warm_up(cls)
    traced, peak, kept = _traced(lambda: _populate(cls, users, nodes))
    built, count = kept
    replicas = [_replica(node) for node in built]
    sync_bytes, sync_messages = sync_cost(replicas, replicas[-1], NOW)
    state_bytes, newcomer, strategy, messages = _one_replica(cls, nodes, replicas[0])
    times = _merge_times(strategy, nodes, messages, NOW)
    return {
        "strategy": cls.name,
        "kind": "replicated",
        "nodes": nodes,
        "users": users,
        "users_per_node": users_per_node,
        "count": count,
        "cluster_bytes": traced,
        "cluster_peak_bytes": peak,
        "state_bytes": state_bytes,
        "newcomer_count": newcomer.count(NOW),
        "sync_messages": sync_messages,
        "sync_bytes": sync_bytes,
        "merge_messages": len(messages),
        "merge_seconds": statistics.median(times),
        "merge_seconds_mean": statistics.fmean(times),
        "merge_repeats": len(times),
    }


def measure_churn_here(name: str, retired: int, nodes: int, users_per_node: int) -> dict[str, Any]:
    """The child's work for :func:`measure_churn`."""
    _check_retired(retired)
    _check_count("nodes", nodes, MAX_NODES)
    _check_count("users", users_per_node, MAX_USERS)
    cls = strategy_class(name)
    if measurable(cls) != "replicated":
        raise ScaleUsageError(
            f"retired=... needs a replicated strategy; {cls.name!r} is not replicated"
        )
    ids = nodes + retired + 1  # every id ever used, and the fresh one measured at the end
    strategy = cls(StrategyConfig(nodes=ids))
    assert isinstance(strategy, ReplicatedStrategy)
    logins = logouts = 0
    now = NOW

    def join(node_id: int) -> Replica:
        nonlocal logins
        replica = strategy.replica(node_id)
        for user in range(users_per_node):
            replica.login(f"user-{node_id}-{user}", now)
        logins += users_per_node
        return replica

    live = [join(i) for i in range(nodes)]
    exchange(live, now)
    folds = isinstance(live[0], Retiring)
    for step in range(retired):
        now = NOW + step + 1
        leaving = live.pop(0)
        for user in range(users_per_node // 2):
            leaving.logout(f"user-{leaving.node_id}-{user}", now)
        logouts += users_per_node // 2
        exchange([leaving, *live], now)  # its last state goes out before it leaves
        if folds and live and isinstance(live[0], Retiring):
            live[0].retire(leaving.node_id, now)
        live.append(join(nodes + step))
        exchange(live, now)
    now += CHURN_SETTLE
    exchange(live, now)
    counts = sorted({replica.count(now) for replica in live})
    sync_bytes, sync_messages = sync_cost(live, live[0], now)
    state_bytes, newcomer, _ = _caught_up(strategy, ids - 1, live[0], now)
    return {
        "strategy": cls.name,
        "kind": "replicated",
        "retired": retired,
        "nodes": nodes,
        "users_per_node": users_per_node,
        "folds_retired": folds,
        "count": counts[0] if len(counts) == 1 else None,
        "counts": counts,
        "expected": logins - logouts,
        "newcomer_count": newcomer.count(now),
        "state_bytes": state_bytes,
        "sync_messages": sync_messages,
        "sync_bytes": sync_bytes,
    }


def _measure_redis(cls: type[Strategy], users: int) -> dict[str, Any]:
    """``used_memory`` of a fresh Redis before and after ``users`` logins via the client."""
    import redis

    from .servers.redis_server import RedisServer

    with RedisServer() as server:
        admin = redis.Redis.from_url(server.url)
        try:
            before = int(admin.info("memory")["used_memory"])
            config = StrategyConfig(nodes=1, endpoint=server.url, pipeline=REDIS_PIPELINE)
            strategy = cls(config)
            assert isinstance(strategy, ServiceStrategy)
            client = strategy.client("countbench:memory:", 0)
            try:
                _login_all([client], users)
                client.sync(NOW)
                count = client.count(NOW)
            finally:
                client.close()
            after = int(admin.info("memory")["used_memory"])
            version = server.version
        finally:
            admin.close()
    return {
        "strategy": cls.name,
        "kind": "redis",
        "users": users,
        "nodes": 1,
        "count": count,
        "redis_version": version,
        "used_memory_before": before,
        "used_memory_after": after,
        "redis_bytes": after - before,
        "redis_bytes_per_user": _per(after - before, users),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m countbench.bench.memory",
        description="Measure a strategy's memory per online user; print JSON.",
    )
    parser.add_argument("--strategy", required=True)
    parser.add_argument(
        "--users", type=int, required=True, help="users (with --nodes-curve: per node)"
    )
    parser.add_argument("--nodes", type=int, default=DEFAULT_NODES)
    parser.add_argument(
        "--nodes-curve", action="store_true", help="state, sync and merge cost at --nodes"
    )
    parser.add_argument(
        "--churn", type=int, default=None, help="state and sync bytes after K replacements"
    )
    options = parser.parse_args(argv)
    try:
        if options.churn is not None:
            result = measure_churn_here(
                options.strategy, options.churn, options.nodes, options.users
            )
        elif options.nodes_curve:
            result = measure_nodes_here(options.strategy, options.nodes, options.users)
        else:
            result = measure_users_here(options.strategy, options.users, options.nodes)
    except ScaleUsageError as exc:
        print(f"countbench: error: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
