"""redis-cluster on a real 3-master Redis Cluster started by countbench's own launcher."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from countbench.bench.plan import Plan
from countbench.bench.servers.redis_cluster import (
    RedisClusterServer,
    cluster_masters,
    is_cluster_node,
)
from countbench.bench.servers.redis_server import RedisServer, RedisUnavailable
from countbench.bench.workload import WorkloadSpec
from countbench.strategies.base import Mode, StrategyConfig
from countbench.strategies.redis_cluster import (
    ClusterReadIncomplete,
    ClusterShardUnavailable,
    ClusterTopologyError,
    RedisClusterClientNode,
    RedisClusterSessions,
    user_shard,
)
from helpers import children, countbench, marked, smoke

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

SPEC = WorkloadSpec(users=60, operations=400, workers=2, nodes=2, sync_every=50, seed=7)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServer]:
    with RedisClusterServer() as server:
        yield server


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def _keys_per_master(cluster: RedisClusterServer, prefix: str) -> list[int]:
    counts = []
    for master in cluster.masters:
        client = redis.Redis(host=master.host, port=master.port)
        counts.append(sum(1 for _ in client.scan_iter(match=prefix + "*")))
        client.close()
    return counts


def test_cluster_start_and_stop_leave_no_process() -> None:
    before = children()
    server = RedisClusterServer().start()
    try:
        pids = server.pids
        assert len(pids) == 3 and set(pids) <= children()
        for master in server.masters:
            client = redis.Redis(host=master.host, port=master.port, decode_responses=True)
            info = client.cluster("info")
            assert info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == 3
            client.close()
        masters = cluster_masters(server.url)
        assert sorted(server.addresses) == sorted(f"{h}:{p}" for h, p in masters)
    finally:
        server.stop()
    server.stop()  # idempotent
    assert _gone(pids)
    assert children() == before


def test_a_failed_start_leaves_no_process() -> None:
    before = children()
    with pytest.raises(RedisUnavailable) as info:
        RedisClusterServer(startup_timeout=0.0).start()  # no time to gossip: never ok
    assert "cluster_state:ok" in str(info.value) and "\n" not in str(info.value)
    assert children() == before


def _plan(mode: Mode, cluster: RedisClusterServer, **spec: object) -> Plan:
    return Plan(
        ("redis-cluster",), mode, SPEC.with_overrides(spec), "test", {"redis-cluster": cluster.url}
    )


@pytest.mark.parametrize("mode", list(Mode), ids=str)
def test_fault_free_count_equals_the_truth(mode: Mode, cluster: RedisClusterServer) -> None:
    plan = _plan(mode, cluster)
    with plan.driver("redis-cluster", f"truth-{mode}") as driver:
        driver.run("mixed", 1)
        driver.settle()
        counts = driver.counts()
    truth = len(plan.workload.online_after_mixed)
    assert truth > 0
    assert counts == [truth] * SPEC.workers


def test_pipelined_clients_count_the_same(cluster: RedisClusterServer) -> None:
    plan = _plan(Mode.THREAD, cluster, pipeline=16)
    with plan.driver("redis-cluster", "pipelined") as driver:
        driver.run("mixed", 1)
        driver.settle()
        assert driver.counts() == [len(plan.workload.online_after_mixed)] * SPEC.workers


def test_users_spread_over_every_master(cluster: RedisClusterServer) -> None:
    prefix = "countbench:spread:"
    node = RedisClusterSessions(StrategyConfig(session_timeout=100.0, endpoint=cluster.url))
    client = node.client(prefix, 0)
    assert isinstance(client, RedisClusterClientNode)
    try:
        assert client.layout.shards == 12
        assert [len(shards) for shards in client.layout.by_master] == [4, 4, 4]
        for i in range(300):
            client.login(f"user-{i}", 1.0)
        assert client.count(2.0) == 300
        keys = _keys_per_master(cluster, prefix)
        assert keys == [4, 4, 4]  # every shard key exists, four on each master
        sizes = []
        for master in cluster.masters:
            r = redis.Redis(host=master.host, port=master.port)
            sizes.append(sum(int(r.zcard(k)) for k in r.scan_iter(match=prefix + "*")))
            r.close()
        assert sum(sizes) == 300 and min(sizes) > 50  # users really spread
        client.sync(3.0)
    finally:
        client.close()
        for master in cluster.masters:
            r = redis.Redis(host=master.host, port=master.port)
            for key in r.scan_iter(match=prefix + "*"):
                r.unlink(key)
            r.close()


def test_a_killed_master_fails_its_writes_and_every_read(cluster: RedisClusterServer) -> None:
    config = StrategyConfig(session_timeout=100.0, endpoint=cluster.url, request_timeout=2.0)
    client = RedisClusterSessions(config).client("countbench:kill:", 0)
    assert isinstance(client, RedisClusterClientNode)
    layout = client.layout
    users = [f"k{i}" for i in range(60)]
    for user in users:
        client.login(user, 1.0)
    assert client.count(1.0) == 60
    victim = cluster.masters[2]
    dead = layout.masters.index((victim.host, victim.port))
    on_dead = [u for u in users if layout.key_master[user_shard(u, layout.shards)] == dead]
    alive = [u for u in users if u not in on_dead]
    assert on_dead and alive
    cluster.kill_master(2)
    try:
        assert victim.pid is not None and _gone([victim.pid])
        with pytest.raises(ClusterShardUnavailable) as write:
            client.heartbeat(on_dead[0], 2.0)
        message = str(write.value)
        assert victim.address in message and "\n" not in message
        client.logout(alive[0], 2.0)  # the other masters keep serving their slots
        client.heartbeat(alive[1], 2.0)
        with pytest.raises(ClusterReadIncomplete) as read:
            client.count(3.0)
        message = str(read.value)
        assert "4 of 12 shards" in message and victim.address in message
        assert "\n" not in message

        async def async_read() -> None:
            node = RedisClusterSessions(config)
            with pytest.raises(ClusterShardUnavailable):  # cannot even open: a master is down
                await node.async_client("countbench:kill:", 1)

        asyncio.run(async_read())
    finally:
        cluster.restart_master(2)
    # Back, empty (persistence off): the read is whole again and counts what survived.
    assert client.count(4.0) == len(alive) - 1
    client.close()


def test_async_client_reads_the_sum(cluster: RedisClusterServer) -> None:
    config = StrategyConfig(session_timeout=10.0, endpoint=cluster.url, pipeline=4)

    async def scenario() -> tuple[int, int]:
        node = await RedisClusterSessions(config).async_client("countbench:async:", 0)
        for i in range(40):
            await node.login(f"a{i}", 0.0)
        await node.heartbeat("a0", 9.0)
        first = await node.count(9.0)
        second = await node.count(15.0)  # everyone but a0 has expired
        await node.close()
        return first, second

    assert asyncio.run(scenario()) == (40, 1)


def test_a_standalone_redis_is_refused_in_one_line() -> None:
    with RedisServer() as server:
        assert not is_cluster_node(server.url)
        config = StrategyConfig(endpoint=server.url)
        with pytest.raises(ClusterTopologyError) as info:
            RedisClusterSessions(config).client("countbench:x:", 0)
        assert "not a Redis Cluster node" in str(info.value)
        assert "\n" not in str(info.value)


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return countbench(*args, cwd=cwd, env=dict(os.environ), timeout=240)


def test_countbench_list_shows_redis_cluster(tmp_path: Path) -> None:
    result = _run_cli("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "redis-cluster" in result.stdout


def test_users_cluster_keeps_its_keys_and_loses_ours(
    tmp_path: Path, cluster: RedisClusterServer
) -> None:
    """--redis-url at a cluster node: the run uses that cluster, keeps the user's keys on
    every master and deletes its own on every master."""
    clients = [redis.Redis(host=m.host, port=m.port) for m in cluster.masters]
    for i, client in enumerate(clients):  # one key of the user's in a slot of each master
        key = next(f"app:{j}" for j in range(10_000) if _owner(cluster, f"app:{j}") == i)
        client.set(key, f"keep {i}")
    before = [{k: c.dump(k) for k in c.keys("*")} for c in clients]
    report = tmp_path / "r.json"
    result = _run_cli(
        "run",
        "--strategy",
        "redis-cluster",
        *smoke(200, 30),
        *("--redis-url", cluster.url, "--json", str(report)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    after = [{k: c.dump(k) for k in c.keys("*")} for c in clients]
    assert after == before
    data = json.loads(report.read_text())
    facts = data["services"]["redis-cluster"]
    assert facts["origin"].startswith("user's cluster")
    assert sorted(facts["masters"]) == sorted(cluster.addresses)
    verification = data["results"][0]["verification"]
    assert verification["max_abs_error"] == 0
    for client in clients:
        for key in list(client.keys("app:*")):
            client.delete(key)
        client.close()


def _owner(cluster: RedisClusterServer, key: str) -> int:
    from redis.crc import key_slot

    slot = key_slot(key.encode())
    return next(m.index for m in cluster.masters if m.slots[0] <= slot <= m.slots[1])


def test_a_run_starts_a_cluster_and_leaves_no_process(tmp_path: Path) -> None:
    mark = f"cluster-run-{time.monotonic_ns()}"
    report = tmp_path / "r.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "countbench.bench.cli",
            *("run", "--strategy", "redis-cluster", "--smoke", "--quiet"),
            *("--operations", "200", "--users", "30", "--json", str(report)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COUNTBENCH_TEST_MARK": mark},
    )
    assert result.returncode == 0, result.stderr
    assert not marked(mark)
    facts = json.loads(report.read_text())["services"]["redis-cluster"]
    assert facts["origin"] == "started by countbench" and len(facts["pids"]) == 3
    assert _gone(facts["pids"])
