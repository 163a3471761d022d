"""Networked strategies on real servers started by countbench's own launchers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from countbench.bench.drivers import make_driver
from countbench.bench.latency import history_rows, mean_ns, merge, summarize
from countbench.bench.measure import verify
from countbench.bench.plan import Plan
from countbench.bench.servers.central import CentralService
from countbench.bench.servers.nodes import NodeServer
from countbench.bench.servers.redis_cluster import RedisClusterServer
from countbench.bench.servers.redis_server import RedisServer
from countbench.bench.services import provide
from countbench.bench.workload import Op, WorkloadSpec, build
from countbench.strategies import registry
from countbench.strategies.aggregate import AggregateOnDemand, AggregateRemote, parse_address
from countbench.strategies.base import (
    ClientNode,
    Consistency,
    Mode,
    ServiceStrategy,
    Strategy,
    StrategyConfig,
)
from countbench.strategies.central import CentralCounterService
from countbench.strategies.central_protocol import CentralClient
from countbench.strategies.errors import UsageError
from countbench.strategies.eventual import EventualSync
from countbench.strategies.redis_set import RedisSetSessions
from countbench.strategies.redis_zset import RedisSortedSetSessions
from countbench.strategies.registry import BUILTINS
from helpers import countbench, marked, smoke

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

SERVICE_CLASSES = [c for c in BUILTINS if issubclass(c, ServiceStrategy)]
SPEC = WorkloadSpec(users=40, operations=400, workers=2, nodes=2, sync_every=50, seed=11)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def central() -> Iterator[CentralService]:
    with CentralService(timeout=SPEC.session_timeout) as service:
        yield service


@pytest.fixture(scope="module")
def node_servers() -> Iterator[list[CentralService]]:
    servers = [CentralService(timeout=SPEC.session_timeout).start() for _ in range(SPEC.nodes)]
    yield servers
    for server in servers:
        server.stop()


def _nodes_url(servers: list[CentralService]) -> str:
    return "nodes://" + ",".join(f"{s.host}:{s.port}" for s in servers)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServer]:
    with RedisClusterServer() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def endpoints(
    redis_server: RedisServer,
    central: CentralService,
    node_servers: list[CentralService],
    redis_cluster: RedisClusterServer,
) -> dict[str, str]:
    return {
        "redis": redis_server.url,
        "redis-cluster": redis_cluster.url,
        "central": f"central://{central.host}:{central.port}",
        "nodes": _nodes_url(node_servers),
    }


def _plan(name: str, mode: Mode, endpoints: dict[str, str], **spec: object) -> Plan:
    return Plan((name,), mode, SPEC.with_overrides(spec), "test", endpoints)


CASES = [(c.name, mode) for c in SERVICE_CLASSES for mode in Mode if mode in c.modes]


@pytest.mark.parametrize(("name", "mode"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_fault_free_count_equals_the_truth(
    name: str, mode: Mode, endpoints: dict[str, str]
) -> None:
    plan = _plan(name, mode, endpoints)
    with plan.driver(name, f"truth-{mode}", record_latency=True) as driver:
        driver.run("mixed", 1)
        driver.settle()
        counts = driver.counts()
        encoded = driver.latencies()
    histograms = merge(encoded)
    truth = len(plan.workload.online_after_mixed)
    assert truth > 0
    assert counts == [truth] * SPEC.workers  # every worker's client reads the truth
    # Latency: every kind of the mixed stream recorded once per call, percentiles ordered.
    calls = sum(1 for s in plan.workload.mixed for k in s.kinds if k is Op.LOGIN)
    assert histograms["login"].get_total_count() == calls
    means = mean_ns(row for worker in encoded for row in history_rows(worker))
    assert means.keys() == histograms.keys()
    for kind, histogram in histograms.items():
        s = summarize(histogram, means[kind])
        assert 0 < s["min_us"] <= s["p50_us"] <= s["p90_us"] <= s["p99_us"]
        assert s["p99_us"] <= s["p99.9_us"] <= s["max_us"]
        assert s["min_us"] <= s["mean_us"] <= s["max_us"]
        # The exact mean of the calls, as hdrh's (which walks its buckets) within its 3
        # significant digits.
        assert s["mean_us"] == pytest.approx(summarize(histogram)["mean_us"], rel=2e-3)


@pytest.mark.parametrize("name", ["redis-incr", "redis-zset", "central"])
def test_pipelined_clients_count_the_same(name: str, endpoints: dict[str, str]) -> None:
    plan = _plan(name, Mode.THREAD, endpoints, pipeline=16)
    with plan.driver(name, "pipelined") as driver:
        driver.run("mixed", 1)
        driver.settle()
        assert driver.counts() == [len(plan.workload.online_after_mixed)] * SPEC.workers


def test_redis_set_over_counts_after_expiry_while_zset_does_not(
    redis_server: RedisServer,
) -> None:
    """A user who vanishes without logging out: the set keeps them, the sorted set not."""
    config = StrategyConfig(session_timeout=1.0, endpoint=redis_server.url)
    set_node = RedisSetSessions(config).client("countbench:expiry:set:", 0)
    zset_node = RedisSortedSetSessions(config).client("countbench:expiry:zset:", 0)
    try:
        for node in (set_node, zset_node):
            node.login("alice", 0.0)
            node.login("bob", 0.0)
            node.logout("bob", 0.5)
        time.sleep(2.1)  # Redis expires the set strategy's session key by its own clock
        client = redis.Redis.from_url(redis_server.url)
        assert not client.exists("countbench:expiry:set:session:alice")
        client.close()
        assert set_node.count(3.0) == 1  # alice's session is gone, she is still counted
        assert zset_node.count(3.0) == 0
    finally:
        set_node.close()
        zset_node.close()


def test_zset_heartbeat_keeps_a_user_and_cannot_revive_an_expired_one(
    redis_server: RedisServer,
) -> None:
    config = StrategyConfig(session_timeout=10.0, endpoint=redis_server.url)
    node = RedisSortedSetSessions(config).client("countbench:hb:zset:", 0)
    try:
        node.login("a", 0.0)
        node.heartbeat("a", 9.0)
        assert node.count(15.0) == 1
        node.heartbeat("a", 30.0)  # 21 s after the last sign of life: too late
        assert node.count(30.0) == 0
        node.heartbeat("ghost", 30.0)
        assert node.count(30.0) == 0
    finally:
        node.close()


def _run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return countbench(*args, cwd=cwd, env=dict(os.environ) if env is None else env)


def test_users_redis_keeps_its_keys_and_loses_ours(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With --redis-url, countbench never flushes: keys that were there before the run are
    there after it, unchanged, and none of the run's own keys is left."""
    client = redis.Redis.from_url(redis_server.url)
    client.set("app:config", "keep me")
    client.sadd("app:set", "a", "b")
    client.hset("app:hash", mapping={"k": "v"})
    client.expire("app:hash", 3600)
    before = {key: client.dump(key) for key in client.keys("*")}
    report = tmp_path / "r.json"
    result = _run_cli(
        "compare",
        "redis-set,redis-zset,redis-incr",
        *smoke(200, 30),
        *("--redis-url", redis_server.url, "--json", str(report)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    after = {key: client.dump(key) for key in client.keys("*")}
    assert after == before
    assert client.ttl("app:hash") > 0
    data = json.loads(report.read_text())
    assert data["services"]["redis"]["origin"].startswith("user")
    client.close()


def test_password_never_reaches_output_or_report(tmp_path: Path) -> None:
    with RedisServer() as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("requirepass", "s3cret-pw")
        url = server.url.replace("redis://", "redis://:s3cret-pw@")
        report = tmp_path / "r.json"
        result = _run_cli(
            "run",
            "--strategy",
            "redis-incr",
            *smoke(100, 20),
            "--redis-url",
            url,
            "--json",
            str(report),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "s3cret-pw" not in result.stdout + result.stderr
        assert "s3cret-pw" not in report.read_text()
        wrong = _run_cli(
            "run",
            "--strategy",
            "redis-incr",
            "--smoke",
            "--redis-url",
            server.url.replace("redis://", "redis://:nope@"),
            cwd=tmp_path,
        )
        assert wrong.returncode in (1, 2)
        assert "nope" not in wrong.stderr
        lines = wrong.stderr.strip().splitlines()
        # Progress lines ("[1/5] starting redis") may come first; one error line ends it.
        assert [line for line in lines if "error" in line] == lines[-1:]
        assert "Traceback" not in wrong.stderr


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:1/0", "http://example.invalid", "redis://[bad"],
    ids=["unreachable", "bad-scheme", "unparseable"],
)
def test_bad_redis_urls_fail_in_one_line(tmp_path: Path, url: str) -> None:
    result = _run_cli(
        "run", "--strategy", "redis-zset", "--smoke", "--redis-url", url, cwd=tmp_path
    )
    assert result.returncode in (1, 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("countbench: error:"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_no_server_process_survives_a_run(tmp_path: Path) -> None:
    mark = f"run-{time.monotonic_ns()}"
    env = {**os.environ, "COUNTBENCH_TEST_MARK": mark}
    ok = _run_cli(
        "compare",
        "redis-zset,central",
        *smoke(100, 20),
        cwd=tmp_path,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert not marked(mark)


def test_ctrl_c_mid_run_leaves_no_server_behind(tmp_path: Path) -> None:
    mark = f"ctrl-c-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "countbench.bench.cli",
            "compare",
            "central,redis-zset",
            "--quiet",
            "--operations",
            "2000",
            "--users",
            "50",
            "--json",
            "r.json",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COUNTBENCH_TEST_MARK": mark},
    )
    deadline = time.monotonic() + 30
    spawned: set[psutil.Process] = set()
    while time.monotonic() < deadline and len(spawned) < 3:
        try:
            spawned.update(psutil.Process(proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    names = " ".join(" ".join(p.cmdline()) for p in spawned if p.is_running())
    assert "redis-server" in names or "servers.central" in names, names
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in stderr
    _, alive = psutil.wait_procs(list(spawned), timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not marked(mark)
    assert not (tmp_path / "r.json").exists()


def test_aggregate_remote_read_is_partial_when_a_node_is_down() -> None:
    servers = [CentralService(timeout=100.0).start() for _ in range(3)]
    try:
        config = StrategyConfig(nodes=3, session_timeout=100.0, endpoint=_nodes_url(servers))
        writers = [AggregateRemote(config).client("countbench:partial:", w) for w in range(3)]
        for w, node in enumerate(writers):
            for i in range(w + 1):  # node w holds w + 1 users
                node.login(f"u{w}-{i}", 1.0)
        reader = writers[0]
        assert reader.count(2.0) == 6
        servers[2].stop()
        assert reader.count(3.0) == 3  # node 2's three users are missing from the sum
        stats = reader.stats()  # type: ignore[attr-defined]
        assert stats["reads"] == 2 and stats["partial_reads"] == 1
        for node in writers:
            node.close()
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def node_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A node of ``aggregate`` in a process of its own (holding no users yet)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "countbench.bench.servers.nodes"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, host, port = proc.stdout.readline().split()
        assert ready == "READY"
        yield proc, f"{host}:{port}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


def _wait_stopped(proc: subprocess.Popen[str]) -> None:
    """Until the signal took effect: the process is stopped, or gone (a signal is
    delivered asynchronously, and a read may otherwise still find it running)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        status = psutil.Process(proc.pid).status()
        if status in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
            return
        time.sleep(0.01)
    raise AssertionError("the node process did not stop")


@pytest.mark.parametrize("stop", [signal.SIGSTOP, signal.SIGKILL], ids=["paused", "killed"])
def test_aggregate_read_is_partial_while_a_node_is_down_and_writes_stay_local(
    node_process: tuple[subprocess.Popen[str], str], stop: signal.Signals
) -> None:
    """Node 1 lives in another process: paused, a read waits out the read timeout and
    leaves its users out; killed, at once. Node 0's own users' writes never wait on it."""
    proc, address = node_process
    config = StrategyConfig(nodes=2, session_timeout=100.0, request_timeout=0.5)
    strategy = AggregateOnDemand(config)
    home = strategy.host(0, "ns:")
    with (
        NodeServer(home.requests) as server,
        CentralClient(*parse_address(address), "ns:") as remote,
    ):
        for i in range(3):
            remote.login(f"far-{i}", 1.0)  # node 1 holds three users
        client = strategy.client(home, [server.address, address], 0)
        client.login("near", 1.0)
        assert client.count(2.0) == 4
        os.kill(proc.pid, stop)
        _wait_stopped(proc)
        started = time.monotonic()
        client.login("near-2", 2.5)  # local: no wait on the stopped node
        assert time.monotonic() - started < 0.3  # well below the read timeout
        started = time.monotonic()
        assert client.count(3.0) == 2  # node 1's three users are missing from the sum
        waited = time.monotonic() - started
        assert waited < 2.0
        if stop == signal.SIGSTOP:
            assert waited >= 0.4  # the read waited for node 1 until its timeout
            os.kill(proc.pid, signal.SIGCONT)
            assert client.count(4.0) == 5  # back: the connection is reopened, the sum whole
        stats = client.stats()  # type: ignore[attr-defined]
        expected = {signal.SIGSTOP: (3, 1), signal.SIGKILL: (2, 1)}[stop]
        assert (stats["reads"], stats["partial_reads"]) == expected
        client.close()


def test_eventual_reads_a_cached_total_until_the_next_sync(
    node_servers: list[CentralService],
) -> None:
    config = StrategyConfig(nodes=2, session_timeout=100.0, endpoint=_nodes_url(node_servers))
    a = EventualSync(config).client("countbench:cache:", 0)
    b = EventualSync(config).client("countbench:cache:", 1)
    try:
        a.login("x", 1.0)
        b.login("y", 1.0)
        a.sync(2.0)
        b.sync(2.0)
        assert a.count(2.0) == 2
        b.login("z", 3.0)
        b.sync(3.0)  # b's write is out, but a has not refreshed: a still reads 2
        assert a.count(10.0) == 2
        stats = a.stats()  # type: ignore[attr-defined]
        assert stats["staleness_max_s"] == pytest.approx(8.0)
        a.sync(11.0)
        assert a.count(11.0) == 3
    finally:
        a.close()
        b.close()


class BlockingCentral(ServiceStrategy):
    """A plug-in that writes the blocking client only: asyncio mode runs it in threads."""

    name = "blocking-central"
    summary = "central's blocking client, and no asyncio client of its own"
    consistency = Consistency.STRONG

    service = "central"

    def client(self, namespace: str, worker: int) -> ClientNode:
        return CentralCounterService(self.config).client(namespace, worker)


def test_a_service_strategy_without_an_asyncio_client_runs_in_asyncio_mode(
    central: CentralService,
) -> None:
    workload = build(SPEC)
    endpoint = f"central://{central.host}:{central.port}"
    config = StrategyConfig(session_timeout=SPEC.session_timeout, endpoint=endpoint)
    strategy = BlockingCentral(config)
    with make_driver(Mode.ASYNCIO, strategy, workload, "countbench:threaded:") as driver:
        driver.run("mixed", 1)
        driver.settle()
        counts = driver.counts()
        stats = driver.node_stats()
    assert counts == [len(workload.online_after_mixed)] * SPEC.workers
    assert stats == []  # central's client keeps no read statistics, nor does its wrapper


class OwnServer(ServiceStrategy):
    """A plug-in with a server of its own (the central service, started by serve())."""

    name = "own-server"
    summary = "central's client, on a server the plug-in starts itself"
    consistency = Consistency.STRONG
    service = "own-central"

    @classmethod
    @contextlib.contextmanager
    def serve(cls, run_id: str, session_timeout: float) -> Iterator[tuple[str, dict[str, Any]]]:
        with CentralService(timeout=session_timeout) as server:
            yield f"central://{server.host}:{server.port}", {"pid": server.pid}

    def client(self, namespace: str, worker: int) -> ClientNode:
        return CentralCounterService(self.config).client(namespace, worker)


def test_a_plugin_starts_its_own_server_for_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BUILTINS", (*registry.BUILTINS, OwnServer))
    with provide({"own-central"}, "own", 100.0, 2) as run:
        facts = run.facts["own-central"]
        assert facts["origin"] == "started by own-server"
        server = psutil.Process(facts["pid"])
        client = OwnServer(StrategyConfig(endpoint=run.endpoints["own-central"])).client("n:", 0)
        client.login("a", 1.0)
        assert client.count(1.0) == 1
        client.close()
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE


def test_a_service_nobody_can_start_is_one_line() -> None:
    no_one = pytest.raises(UsageError, match="no strategy can start the 'nowhere' service")
    with no_one, provide({"nowhere"}, "none", 100.0, 2):
        pass


THREADED = [c for c in BUILTINS if Mode.THREAD in c.modes]


@pytest.mark.parametrize("cls", THREADED, ids=[c.name for c in THREADED])
def test_a_strategy_that_says_its_syncs_do_no_work_reads_the_same_without_them(
    cls: type[Strategy], endpoints: dict[str, str]
) -> None:
    """``syncs = False`` lets a timed loop be part of a sync interval (chunks_per_interval):
    it must be true. One worker (its reads then come in one order): every value it reads
    in a pass is the same with the sync points as without them. ``eventual``, whose sync
    refreshes the total it reads, shows that the check can fail."""
    plan = _plan(cls.name, Mode.THREAD, endpoints, workers=1)
    full = plan.workload
    bare = replace(full, mixed=[s.without(Op.SYNC) for s in full.mixed])
    assert sum(len(s) for s in bare.mixed) < sum(len(s) for s in full.mixed)
    read: dict[str, list[object]] = {}
    for tag, workload in (("with", full), ("without", bare)):
        namespace = plan.namespace(cls.name, f"syncs-{tag}")
        with make_driver(Mode.THREAD, plan.strategy(cls.name), workload, namespace, True) as d:
            d.run("mixed", 1)
            read[tag] = [row[5] for row in history_rows(d.latencies()[0]) if row[0] == "count"]
    assert read["with"], "the pass read nothing"
    if not cls.syncs:
        assert read["without"] == read["with"]
    if cls is EventualSync:
        assert cls.syncs and read["without"] != read["with"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP")
def test_an_open_loop_pass_shows_a_server_stall_that_service_time_hides() -> None:
    """The central service is stopped (SIGSTOP) for 1 s during a pass paced at 2,000
    operations a second: every call scheduled in that second waits for it, so latency from
    the intended start has a p99.9 near a second; only the call in flight on each of the 2
    connections took that long itself, so the service time's p99.9 does not show it."""
    spec = WorkloadSpec(users=200, operations=3000, workers=2, rate=2000.0, arrivals="constant")
    with CentralService(timeout=spec.session_timeout) as server:
        url = f"central://{server.host}:{server.port}"
        plan = Plan(("central",), Mode.THREAD, spec, "stall", {"central": url})

        def stall() -> None:
            time.sleep(0.8)
            os.kill(server.pid, signal.SIGSTOP)
            try:
                time.sleep(1.0)
            finally:
                os.kill(server.pid, signal.SIGCONT)

        stopper = threading.Thread(target=stall)
        stopper.start()
        try:
            check, observed, _ = verify(plan, "central")
        finally:
            stopper.join()
    figures = observed.open_loop
    assert figures is not None and figures["offered_per_sec"] == 2000.0
    assert figures["calls"] == sum(s.client_ops for s in plan.workload.mixed)
    intended, service = figures["latency"]["all"], figures["service"]["all"]
    assert intended["p99.9_us"] > 500_000, intended
    assert service["max_us"] > 800_000, service  # the calls in flight during the stop
    assert service["p99.9_us"] < 100_000, service
    assert check.counts == [check.truth] * spec.workers


def test_a_closed_loop_pass_has_no_open_loop_figures(endpoints: dict[str, str]) -> None:
    plan = _plan("central", Mode.THREAD, endpoints)
    _, observed, _ = verify(plan, "central")
    assert observed.open_loop is None and "rate" not in plan.spec.to_dict()
