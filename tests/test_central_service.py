"""The central counter service: real server processes, real sockets, no mocks."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from countbench.bench.servers.central import CentralService
from countbench.strategies.central_protocol import (
    AsyncCentralClient,
    CentralClient,
    CentralServiceError,
)
from countbench.strategies.tracker import SessionTracker

TIMEOUT = 5.0  # the service's session timeout, in virtual seconds


@pytest.fixture(scope="module")
def service() -> Iterator[CentralService]:
    with CentralService(timeout=TIMEOUT) as svc:
        yield svc


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def client(service: CentralService, namespace: str) -> Iterator[CentralClient]:
    with CentralClient(service.host, service.port, namespace) as c:
        yield c


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (reaped, or a zombie waiting for its parent)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not _gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.01)


def _ops(seed: int, n: int) -> list[tuple[str, str, float]]:
    """A random mixed sequence over few users, with time moving past the timeout."""
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(40)]
    kinds = ["login"] * 4 + ["heartbeat"] * 3 + ["logout"] * 2 + ["count"]
    now, ops = 0.0, []
    for _ in range(n):
        now += rng.choice([0.0, 0.01, 0.25, 0.5, 1.0, 3.0])
        ops.append((rng.choice(kinds), rng.choice(users), now))
    return ops


# --------------------------------------------------------------------------- launcher


def test_start_and_stop_leave_nothing_behind() -> None:
    svc = CentralService(timeout=60.0)
    with svc:
        assert svc.running
        assert svc.host == "127.0.0.1"
        assert svc.port > 0
        assert svc.loop in {"uvloop", "asyncio"}
        pid = svc.pid
        listening = [
            c
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening
        assert {(c.laddr.ip, c.laddr.port) for c in listening} == {("127.0.0.1", svc.port)}
        svc.client("x").ping()
    assert not svc.running
    assert not psutil.pid_exists(pid)
    svc.stop()  # twice is fine
    svc.stop()
    with pytest.raises(CentralServiceError):
        _ = svc.port


def test_a_child_that_cannot_start_raises_and_leaves_nothing() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    svc = CentralService(module="countbench.nonexistent", ready_timeout=15.0)
    with pytest.raises(CentralServiceError, match="nonexistent") as info:
        svc.start()
    assert "\n" not in str(info.value)
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before
    svc.stop()


def test_killed_server_surfaces_as_central_service_error() -> None:
    with CentralService(timeout=60.0) as svc:
        c = svc.client("k")
        c.login("alice", 0.0)
        os.kill(svc.pid, signal.SIGKILL)
        _wait_gone(svc.pid)
        with pytest.raises(CentralServiceError, match="lost the central service"):
            c.count(0.0)
        assert c.closed
        with pytest.raises(CentralServiceError, match="closed"):
            c.ping()
        with pytest.raises(CentralServiceError, match="cannot connect"):
            asyncio.run(_async_count_after_kill(svc.host, svc.port))
        with pytest.raises(CentralServiceError, match="cannot connect"):
            CentralClient(svc.host, svc.port, "k")


async def _async_count_after_kill(host: str, port: int) -> None:
    c = await AsyncCentralClient.open(host, port, "k")
    await c.count(0.0)


def test_async_client_on_a_killed_server_raises() -> None:
    async def scenario(svc: CentralService) -> None:
        c = await svc.async_client("k")
        await c.login("bob", 0.0)
        os.kill(svc.pid, signal.SIGKILL)
        _wait_gone(svc.pid)
        with pytest.raises(CentralServiceError, match="lost the central service"):
            await c.count(0.0)
        assert c.closed

    with CentralService(timeout=60.0) as svc:
        asyncio.run(scenario(svc))


# --------------------------------------------------------------------------- semantics


def test_same_counts_as_a_local_session_tracker(client: CentralClient) -> None:
    local = SessionTracker(TIMEOUT)
    ops = _ops(seed=1, n=600)
    for kind, user, now in ops:
        if kind == "count":
            assert client.count(now) == local.count(now), now
        else:
            getattr(client, kind)(user, now)
            getattr(local, kind)(user, now)
    end = ops[-1][2]
    assert client.count(end) == local.count(end)
    assert client.count(end + TIMEOUT + 1) == local.count(end + TIMEOUT + 1) == 0


def test_expiry_and_heartbeats(client: CentralClient) -> None:
    client.login("alice", 0.0)
    client.login("bob", 0.0)
    client.heartbeat("alice", 3.0)
    assert client.count(TIMEOUT) == 2
    assert client.count(TIMEOUT + 0.5) == 1  # bob expired, alice was refreshed at 3
    assert client.count(3.0 + TIMEOUT) == 1
    client.heartbeat("alice", 3.0 + TIMEOUT + 1)  # too late: an expired session stays over
    assert client.count(3.0 + TIMEOUT + 1) == 0
    client.heartbeat("carol", 10.0)  # unknown user: nothing
    client.logout("dave", 10.0)  # unknown user: the count never goes negative
    assert client.count(10.0) == 0


def test_a_second_login_does_not_count_twice(client: CentralClient) -> None:
    client.login("alice", 1.0)
    client.login("alice", 2.0)
    client.login("alice", 2.0)
    assert client.count(2.0) == 1
    client.logout("alice", 3.0)
    assert client.count(3.0) == 0


def test_namespaces_are_isolated(service: CentralService) -> None:
    a_name, b_name = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    with service.client(a_name) as a, service.client(b_name) as b:
        a.login("alice", 0.0)
        a.login("bob", 0.0)
        b.login("alice", 0.0)
        assert a.count(0.0) == 2
        assert b.count(0.0) == 1
        b.drop()
        assert a.count(0.0) == 2
        assert b.count(0.0) == 0
        with service.client(a_name) as a2:  # a second connection sees the same namespace
            assert a2.count(0.0) == 2


def test_drop_resets_the_namespace_for_every_connection(
    service: CentralService, client: CentralClient
) -> None:
    for i in range(10):
        client.login(f"u{i}", 0.0)
    with service.client(client.namespace) as other:
        assert other.count(0.0) == 10
        other.drop()
        assert client.count(0.0) == 0
        client.login("u0", 1.0)
        assert other.count(1.0) == 1


# --------------------------------------------------------------------------- pipelining


def test_pipeline_matches_sequential_calls_in_order(service: CentralService) -> None:
    ops = _ops(seed=2, n=1000)
    assert sum(kind == "count" for kind, _, _ in ops) > 50
    with service.client(f"seq-{uuid.uuid4().hex}") as seq:
        expected: list[str] = []
        for kind, user, now in ops:
            if kind == "count":
                expected.append(str(seq.count(now)))
            else:
                getattr(seq, kind)(user, now)
                expected.append("+")
        seq_final = seq.count(ops[-1][2])
    with service.client(f"pipe-{uuid.uuid4().hex}") as pipe:
        answers = pipe.pipeline(ops)
        assert answers == expected
        assert pipe.count(ops[-1][2]) == seq_final
        assert pipe.pipeline([]) == []


def test_pipeline_larger_than_one_batch(client: CentralClient) -> None:
    ops = [("login", f"u{i}", 0.0) for i in range(10_000)] + [("count", "", 0.0)]
    answers = client.pipeline(ops)
    assert answers[:-1] == ["+"] * 10_000
    assert answers[-1] == "10000"


def test_async_pipeline(service: CentralService, namespace: str) -> None:
    ops = _ops(seed=3, n=1000)
    with service.client(namespace + "-seq") as seq:
        expected = seq.pipeline(ops)

    async def scenario() -> list[str]:
        async with await service.async_client(namespace) as c:
            answers = await c.pipeline(ops)
            assert await c.pipeline([]) == []
            return answers

    assert asyncio.run(scenario()) == expected


# --------------------------------------------------------------------------- concurrency


def test_threads_lose_no_update(service: CentralService, namespace: str) -> None:
    threads, per_thread = 8, 500
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            with service.client(namespace) as c:
                barrier.wait()
                for i in range(per_thread):
                    c.login(f"t{t}-u{i}", 0.0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    with service.client(namespace) as c:
        assert c.count(0.0) == threads * per_thread


def test_async_tasks_lose_no_update(service: CentralService, namespace: str) -> None:
    tasks, per_task = 8, 500

    async def work(t: int) -> None:
        c = await AsyncCentralClient.open(service.host, service.port, namespace)
        try:
            for i in range(per_task):
                await c.login(f"t{t}-u{i}", 0.0)
        finally:
            await c.close()

    async def shared_client_work() -> int:
        # One client shared by several tasks: its lock keeps answers matched to requests.
        c = await AsyncCentralClient.open(service.host, service.port, namespace + "-shared")
        await asyncio.gather(
            *(c.login(f"s{t}-u{i}", 0.0) for t in range(4) for i in range(50)),
            *(c.ping() for _ in range(20)),
        )
        count = await c.count(0.0)
        await c.close()
        return count

    async def scenario() -> tuple[int, int]:
        await asyncio.gather(*(work(t) for t in range(tasks)))
        c = await AsyncCentralClient.open(service.host, service.port, namespace)
        count = await c.count(0.0)
        await c.close()
        return count, await shared_client_work()

    count, shared = asyncio.run(scenario())
    assert count == tasks * per_task
    assert shared == 200


def test_async_client_calls(service: CentralService, namespace: str) -> None:
    async def scenario() -> None:
        c = await AsyncCentralClient.open(service.host, service.port, namespace)
        await c.ping()
        await c.login("alice", 0.0)
        await c.login("alice", 1.0)
        await c.login("bob", 1.0)
        await c.heartbeat("alice", 4.0)
        assert await c.count(4.0) == 2
        assert await c.count(1.0 + TIMEOUT + 0.5) == 1
        await c.logout("alice", 7.0)
        assert await c.count(7.0) == 0
        await c.login("carol", 8.0)
        await c.drop()
        assert await c.count(8.0) == 0
        await c.close()
        await c.close()
        with pytest.raises(CentralServiceError, match="closed"):
            await c.ping()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- bad input


def _raw_exchange(service: CentralService, data: bytes, answers: int) -> list[bytes]:
    with socket.create_connection((service.host, service.port), timeout=5.0) as sock:
        sock.sendall(data)
        stream = sock.makefile("rb")
        return [stream.readline() for _ in range(answers)]


def test_malformed_lines_get_err_and_the_connection_keeps_working(
    service: CentralService, namespace: str
) -> None:
    ns = namespace.encode()
    requests = [
        (b"C 0", b"-ERR"),  # before any namespace
        (b"P", b"+"),  # ping needs no namespace
        (b"N " + ns, b"+"),
        (b"", b"-ERR"),
        (b"X 1 alice", b"-ERR"),
        (b"L 1", b"-ERR"),
        (b"L 1 alice extra", b"-ERR"),
        (b"L notafloat alice", b"-ERR"),
        (b"L nan alice", b"-ERR"),
        (b"L inf alice", b"-ERR"),
        (b"L 1 \xc3\xa9", b"-ERR"),
        (b"C", b"-ERR"),
        (b"P extra", b"-ERR"),
        (b"N", b"-ERR"),
        (b"A" * 10_000, b"-ERR"),  # too long: rejected, the stream stays in step
        (b"L 1.5 alice", b"+"),
        (b"L 2 bob\r", b"+"),  # CRLF is fine
        (b"H 2.5 alice", b"+"),
        (b"C 3", b"2"),
        (b"O 3 bob", b"+"),
        (b"C 3", b"1"),
    ]
    data = b"".join(line + b"\n" for line, _ in requests)
    answers = _raw_exchange(service, data, len(requests))
    for (line, want), got in zip(requests, answers, strict=True):
        assert got.endswith(b"\n"), (line, got)
        if want == b"-ERR":
            assert got.startswith(b"-ERR "), (line, got)
        else:
            assert got == want + b"\n", (line, got)


def test_lines_split_across_writes(service: CentralService, namespace: str) -> None:
    with socket.create_connection((service.host, service.port), timeout=5.0) as sock:
        stream = sock.makefile("rb")
        for piece in (b"N ", namespace.encode(), b"\nL 1 al", b"ice\nC ", b"1\n"):
            sock.sendall(piece)
            time.sleep(0.01)
        assert [stream.readline() for _ in range(3)] == [b"+\n", b"+\n", b"1\n"]


def test_client_rejects_bad_arguments_before_sending(client: CentralClient) -> None:
    for bad in ("", "two words", "new\nline", "caf\u00e9"):
        with pytest.raises(ValueError):
            client.login(bad, 0.0)
    with pytest.raises(ValueError):
        client.count(float("nan"))
    with pytest.raises(ValueError):
        client.pipeline([("login", "ok", 0.0), ("teleport", "x", 0.0)])
    assert client.count(0.0) == 0  # nothing was sent, the connection is in step
    with pytest.raises(ValueError):
        CentralClient("127.0.0.1", 1, "bad namespace")
