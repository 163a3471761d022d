"""Memory per online user, and the size of replicated state, measured in a fresh process.

:func:`measure_memory` (``python -m countbench.bench.memory --strategy NAME --users N``)
builds the strategy's node(s) and logs in ``users`` distinct users (``user-0``,
``user-1``, ...) at one instant, spread round-robin over the nodes:

* a shared strategy (``local``, ``session``): its node, ``open(Mode.THREAD)``;
* a replicated strategy: ``nodes`` replicas, whose states are then spread so that every
  replica holds the full state (every replica's ``sync()`` messages go to replica 0,
  then replica 0's go to every other one: enough for state-based replicas, which all
  the built-ins are);
* a Redis strategy: a Redis started for the purpose (``RedisServer``), the logins sent
  through the strategy's own client (pipelined), and Redis's ``INFO memory``
  ``used_memory`` read before and after. Other service strategies (``central``,
  ``aggregate``, ``eventual``) keep their state in server processes of their own and are
  refused.

It is done twice, on fresh structures: once for the process's resident set size (psutil,
RSS before and after), then with :mod:`tracemalloc` started before anything is built,
for the bytes Python allocated and still holds for the structures (user names included:
a server has to keep the ids of the users it tracks). RSS is measured without tracemalloc,
whose own bookkeeping would inflate it; it moves by whole pages and keeps freed memory, so
it is the coarser figure. For replicated strategies it also reports the bytes of one
replica's ``sync()`` message bodies and its in-memory state (``state_bytes``: the traced
bytes of one fresh replica after it has received the full state; replica object included).

:func:`measure_nodes` (``--nodes-curve``) measures a replicated strategy at ``nodes``
replicas: ``state_bytes`` of one replica holding the full state, ``cluster_bytes`` of all
the replicas together, sync message bytes, and the time of one ``receive`` of
a full-state message (``time.perf_counter`` over repeated merges of the same message,
median; merges are idempotent for state-based replicas).

:func:`measure_churn` (``--churn K``) measures what replica churn leaves behind: a
cluster of ``nodes`` live replicas in which, ``K`` times, the oldest replica leaves for
good and a new one (a fresh id) joins; each replica logs in ``users_per_node`` users when
it joins and logs half of them out before it leaves, and every step ends with two rounds
of full gossip among the live replicas. A replica that leaves is retired through the
lowest live replica when the strategy can fold retired replicas (a ``retire(node, now)``
method: ``compact``); otherwise its entry simply stays. After the last step the clock
moves past every marker's time to live (:data:`CHURN_SETTLE` seconds) and three more
rounds run. Figures: ``state_bytes`` (traced bytes of one fresh replica, a new id, after
it received a live replica's state), ``sync_bytes`` (one live replica's sync message
bodies), and ``count`` against ``expected`` (logins - logouts: the churn lost nothing).

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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psutil

from ..strategies.base import (
    Message,
    Mode,
    Node,
    Replica,
    ReplicatedStrategy,
    ServiceStrategy,
    SharedStrategy,
    Strategy,
    StrategyConfig,
)
from ..strategies.gcounter import forget_received
from ..strategies.registry import discover

T = TypeVar("T")

NOW = 1.0  # every login happens at this instant: no session expires during a measurement
DEFAULT_NODES = 3
MAX_USERS = 20_000_000
MAX_NODES = 5_000
USERS_PER_NODE = 1_000
MERGE_BUDGET = 0.2  # seconds of repeated merges per nodes point
MERGE_REPEATS = (5, 2_000)  # at least, at most
REDIS_PIPELINE = 1_000
CHILD_TIMEOUT = 1_800.0
MAX_RETIRED = 100_000
CHURN_SETTLE = 120.0  # seconds the clock moves after the churn: past compact's marker TTL


class ScaleUsageError(ValueError):
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
        f"strategy {cls.name!r} keeps its state in server processes of its own: memory is "
        "measured for in-process and Redis strategies only"
    )


# -- the child side ------------------------------------------------------------------------


def _rss() -> int:
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


def _deliver(replicas: Sequence[Replica], target: int, message: Message, depth: int = 0) -> None:
    """``message`` to replica ``target``, then its replies (to their ``dst``, else back to
    the sender), a few rounds deep."""
    replies = replicas[target].receive(message, NOW)
    if depth >= 3:
        return
    for reply in replies:
        dst = reply.dst if reply.dst is not None else message.src
        if 0 <= dst < len(replicas) and dst != target:
            _deliver(replicas, dst, reply, depth + 1)


def spread(replicas: Sequence[Replica]) -> None:
    """Bring every replica to the full state: all into replica 0, then replica 0's out."""
    for replica in replicas[1:]:
        for message in replica.sync(NOW):
            _deliver(replicas, 0, message)
    hub = replicas[0].sync(NOW)
    for target in range(1, len(replicas)):
        for message in hub:
            _deliver(replicas, target, message)


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
    replicas' parse cache of the last message received is not counted."""
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


def _one_replica(cls: type[Strategy], nodes: int, full: list[Message]) -> tuple[int, Replica]:
    """Traced bytes of one fresh replica after it has received ``full`` (a replica's sync
    messages once it holds the full state), and that replica."""
    strategy = cls(StrategyConfig(nodes=nodes))
    assert isinstance(strategy, ReplicatedStrategy)

    def build() -> Replica:
        replica = strategy.replica(nodes - 1)
        for message in full:
            replica.receive(message, NOW)
        return replica

    traced, _, replica = _traced(build)
    return traced, replica


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
        messages = replicas[-1].sync(NOW)
        state_bytes, _ = _one_replica(cls, nodes, replicas[0].sync(NOW))
        result["state_bytes"] = state_bytes
        result["sync_messages"] = len(messages)
        result["sync_bytes"] = sum(len(m.body) for m in messages)
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
    hub = replicas[0].sync(NOW)
    sync_bytes = sum(len(m.body) for m in replicas[-1].sync(NOW))
    state_bytes, target = _one_replica(cls, nodes, hub)
    times: list[float] = []
    spent = 0.0
    while len(times) < MERGE_REPEATS[1] and (len(times) < MERGE_REPEATS[0] or spent < MERGE_BUDGET):
        started = time.perf_counter()
        for message in hub:
            target.receive(message, NOW)
        took = time.perf_counter() - started
        times.append(took)
        spent += took
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
        "sync_messages": len(hub),
        "sync_bytes": sync_bytes,
        "merge_seconds": statistics.median(times),
        "merge_seconds_mean": statistics.fmean(times),
        "merge_repeats": len(times),
    }


def _gossip(replicas: Sequence[Replica], now: float, rounds: int) -> None:
    """``rounds`` rounds: every replica syncs, every message reaches every other one."""
    for _ in range(rounds):
        outbox = [m for replica in replicas for m in replica.sync(now)]
        for message in outbox:
            for replica in replicas:
                if replica.node_id != message.src:
                    replica.receive(message, now)


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
    _gossip(live, now, 2)
    folds = hasattr(live[0], "retire")
    for step in range(retired):
        now = NOW + step + 1
        leaving = live.pop(0)
        for user in range(users_per_node // 2):
            leaving.logout(f"user-{leaving.node_id}-{user}", now)
        logouts += users_per_node // 2
        _gossip([leaving, *live], now, 1)  # its last state goes out before it leaves
        if folds and live:
            live[0].retire(leaving.node_id, now)  # type: ignore[attr-defined]
        live.append(join(nodes + step))
        _gossip(live, now, 2)
    now += CHURN_SETTLE
    _gossip(live, now, 3)
    counts = sorted({replica.count(now) for replica in live})
    full = live[0].sync(now)
    sync_bytes = sum(len(m.body) for m in full)

    def fresh() -> Replica:
        replica = strategy.replica(ids - 1)
        for message in full:
            replica.receive(message, now)
        return replica

    state_bytes, _, newcomer = _traced(fresh)
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
        "sync_messages": len(full),
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
