"""A private Redis Cluster for benchmarks, and what a run needs of a user's cluster.

:class:`RedisClusterServer` starts ``masters`` (default 3) cluster-enabled
:class:`~countbench.bench.servers.redis_server.RedisServer` processes from the same binary,
no replicas, each in its own private directory and on 127.0.0.1, splits the 16384 hash
slots into equal contiguous ranges (CLUSTER ADDSLOTS), joins the nodes (CLUSTER MEET) and
waits until every node reports ``cluster_state:ok`` and knows every other node. Every
process is stopped at the end, also when the start fails half-way.

The nodes run with ``cluster-require-full-coverage no``: when a master dies, only the
slots it owns stop answering, the other masters keep serving theirs (with the default
``yes`` the whole cluster refuses every command once the dead master is marked failed).
:meth:`RedisClusterServer.kill_master` SIGKILLs one master for the real-fault scenarios;
:meth:`RedisClusterServer.restart_master` brings it back, empty, with its slots (its
``nodes.conf`` is kept in its directory).

For a user's cluster (``--redis-url`` pointing at a cluster node): :func:`is_cluster_node`
tells it apart from a standalone Redis, :func:`cluster_masters` lists its masters, and
:func:`delete_run_keys` deletes the run's keys on every master, one key at a time (a
multi-key UNLINK would fail across slots), never FLUSH.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self, cast

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...strategies.closing import Started
from ...strategies.redis_cluster import parse_cluster_slots
from .redis_server import (
    KeyNamespace,
    RedisBinary,
    RedisError,
    RedisServer,
    RedisUnavailable,
    _one_line,
    find_redis_server,
    redact_url,
)

__all__ = [
    "ClusterMaster",
    "RedisClusterServer",
    "cluster_masters",
    "delete_run_keys",
    "is_cluster_node",
]

SLOTS = 16384
BUS_PORT_OFFSET = 10000
_PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class ClusterMaster:
    """One master of a cluster countbench started: its index, address, pid and slots."""

    index: int
    host: str
    port: int
    pid: int | None  # None once killed
    slots: tuple[int, int]  # first and last slot, inclusive

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _client(host: str, port: int, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(
        host=host,
        port=port,
        socket_connect_timeout=min(timeout, 1.0),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def _command(client: redis.Redis, *args: Any) -> Any:
    """``execute_command`` (untyped in redis-py)."""
    return cast(Any, client).execute_command(*args)


def _free_port_pair() -> int:
    """A port p on 127.0.0.1 such that p and its cluster bus port p + 10000 were free."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + BUS_PORT_OFFSET > 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
                bus.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
        except OSError:
            continue
        return port
    raise RedisUnavailable("no free pair of TCP ports (port and port + 10000) on 127.0.0.1")


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The 16384 slots split into ``masters`` contiguous ranges, first and last inclusive."""
    bounds = [i * SLOTS // masters for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


class RedisClusterServer(Started):
    """A Redis Cluster of ``masters`` masters and no replicas that countbench starts and
    stops itself; use as a context manager (see the module docstring).

    ``url`` is the first master's URL (any node serves as a seed: clients learn the others
    from CLUSTER SLOTS); ``urls``, ``addresses``, ``pids`` and ``masters`` describe them all.
    ``start()`` raises :class:`RedisUnavailable` (one line) when a node does not start or
    the cluster does not reach ``cluster_state:ok`` within ``startup_timeout`` seconds, and
    then leaves no process behind.
    """

    def __init__(
        self,
        masters: int = 3,
        binary: RedisBinary | None = None,
        *,
        node_timeout_ms: int = 5000,
        startup_timeout: float = 30.0,
    ) -> None:
        if masters < 1:
            raise RedisError(f"a cluster needs at least one master, not {masters}")
        self._count = masters
        self._binary = binary if binary is not None else find_redis_server()
        self._node_timeout_ms = node_timeout_ms
        self._startup_timeout = startup_timeout
        self._nodes: list[RedisServer] = []
        self._ports: list[int] = []
        self._killed: set[int] = set()
        self._ranges = slot_ranges(masters)

    # ---------------------------------------------------------------- properties

    @property
    def binary(self) -> RedisBinary:
        return self._binary

    @property
    def version(self) -> str:
        self._require_started()
        return self._nodes[0].version if 0 not in self._killed else self._binary.version

    @property
    def url(self) -> str:
        """A seed URL: the first master that is not killed."""
        self._require_started()
        for master in self.masters:
            if master.pid is not None:
                return master.url
        raise RedisUnavailable("every master of the cluster is down")

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.masters]

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in self.masters]

    @property
    def pids(self) -> list[int]:
        """The pids of the masters that are running."""
        return [m.pid for m in self.masters if m.pid is not None]

    @property
    def masters(self) -> list[ClusterMaster]:
        self._require_started()
        return [
            ClusterMaster(
                index=i,
                host="127.0.0.1",
                port=self._ports[i],
                pid=None if i in self._killed else node.pid,
                slots=self._ranges[i],
            )
            for i, node in enumerate(self._nodes)
        ]

    @property
    def running(self) -> bool:
        return len(self._nodes) == self._count

    def _require_started(self) -> None:
        if not self.running:
            raise RedisError("the Redis cluster is not running (call start() first)")

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._nodes:
            raise RedisError("this Redis cluster is already started")
        try:
            for _ in range(self._count):
                self._start_node()
            self._form()
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self) -> None:
        last: RedisUnavailable | None = None
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port_pair()
            node = RedisServer(
                self._binary,
                port=port,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",  # relative to the node's own private --dir
                    "--cluster-node-timeout",
                    str(self._node_timeout_ms),
                    "--cluster-require-full-coverage",
                    "no",
                ],
            )
            try:
                node.start()
            except RedisUnavailable as exc:  # e.g. a port taken between probe and bind
                last = exc
                continue
            self._nodes.append(node)
            self._ports.append(port)
            return
        assert last is not None
        raise last

    def _form(self) -> None:
        first = _client("127.0.0.1", self._ports[0])
        try:
            for i, (low, high) in enumerate(self._ranges):
                client = _client("127.0.0.1", self._ports[i])
                try:
                    _command(client, "CLUSTER ADDSLOTS", *range(low, high + 1))
                finally:
                    client.close()
            for port in self._ports[1:]:
                _command(first, "CLUSTER MEET", "127.0.0.1", port)
        except redis.exceptions.RedisError as exc:
            raise RedisUnavailable(
                f"could not form the Redis cluster: {_one_line(str(exc)) or type(exc).__name__}"
            ) from exc
        finally:
            first.close()

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            waiting = self._not_ready()
            if waiting is None:
                return
            if time.monotonic() >= deadline:
                raise RedisUnavailable(
                    f"the Redis cluster ({self._count} masters) did not reach cluster_state:ok "
                    f"within {self._startup_timeout:g}s: {waiting}"
                )
            time.sleep(0.05)

    def _not_ready(self) -> str | None:
        """None when every node says cluster_state:ok and knows every node; else why not."""
        for port in self._ports:
            client = _client("127.0.0.1", port)
            try:
                info = _command(client, "CLUSTER INFO")
            except redis.exceptions.RedisError as exc:
                return f"127.0.0.1:{port}: {_one_line(str(exc)) or type(exc).__name__}"
            finally:
                client.close()
            fields = _info_fields(info)
            if fields.get("cluster_state") != "ok":
                return f"127.0.0.1:{port} says cluster_state:{fields.get('cluster_state')}"
            if fields.get("cluster_known_nodes") != str(self._count):
                known = fields.get("cluster_known_nodes")
                return f"127.0.0.1:{port} knows {known} of {self._count} nodes"
        return None

    def stop(self) -> None:
        """Stop every node and remove their directories; safe to call any number of times."""
        nodes, self._nodes = self._nodes, []
        self._ports = []
        self._killed = set()
        errors: list[BaseException] = []
        for node in nodes:
            try:
                node.stop()
            except BaseException as exc:  # stop the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]

    # ---------------------------------------------------------------- faults

    def kill_master(self, index: int) -> ClusterMaster:
        """SIGKILL master ``index`` (RedisServer.crash); its slots stop answering."""
        self._require_started()
        if not 0 <= index < self._count:
            raise RedisError(f"no master {index}: the cluster has {self._count}")
        master = self.masters[index]
        self._nodes[index].crash()
        self._killed.add(index)
        return master

    def restart_master(self, index: int) -> None:
        """Start a killed master again (empty: persistence is off) and wait for the cluster."""
        self._require_started()
        if index not in self._killed:
            raise RedisError(f"master {index} is not killed")
        self._nodes[index].restart()
        self._killed.discard(index)
        self._wait_ok()

    def pause_master(self, index: int) -> None:
        """SIGSTOP master ``index``: its connections stay open, nothing is answered."""
        self._require_started()
        self._nodes[index].pause()

    def resume_master(self, index: int) -> None:
        """SIGCONT a paused master."""
        self._require_started()
        self._nodes[index].resume()

    def __repr__(self) -> str:
        if not self._nodes:
            return f"RedisClusterServer({self._count} masters, stopped)"
        return f"RedisClusterServer({', '.join(self.addresses)})"


# ------------------------------------------------------------------------ a user's cluster


def _info_fields(info: Any) -> dict[str, str]:
    if isinstance(info, bytes):
        info = info.decode(errors="replace")
    if isinstance(info, dict):
        return {str(k): str(v) for k, v in info.items()}
    fields: dict[str, str] = {}
    for line in str(info).splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key] = value
    return fields


@contextlib.contextmanager
def _from_url(url: str, timeout: float = 5.0) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=min(timeout, 5.0),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


def is_cluster_node(url: str) -> bool:
    """Does the (already checked) Redis at ``url`` run in cluster mode (cluster_enabled:1)?"""
    try:
        with _from_url(url) as client:
            info = client.info("cluster")
    except redis.exceptions.RedisError as exc:
        raise RedisUnavailable(
            f"cannot ask {redact_url(url)} for INFO cluster: "
            f"{_one_line(str(exc)) or type(exc).__name__}"
        ) from exc
    return str(info.get("cluster_enabled", "0")) == "1"


def cluster_masters(url: str) -> list[tuple[str, int]]:
    """The (host, port) of every master that owns slots, from CLUSTER SLOTS at ``url``."""
    try:
        with _from_url(url) as client:
            reply = _command(client, "CLUSTER SLOTS")
    except redis.exceptions.RedisError as exc:
        raise RedisUnavailable(
            f"cannot ask {redact_url(url)} for CLUSTER SLOTS: "
            f"{_one_line(str(exc)) or type(exc).__name__}"
        ) from exc
    masters: list[tuple[str, int]] = []
    for _low, _high, host, port in parse_cluster_slots(reply):
        if (host, port) not in masters:
            masters.append((host, port))
    return sorted(masters)


def _node_url(url: str, host: str, port: int) -> str:
    """``url`` (credentials, TLS, options kept) pointed at ``host:port``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    shown_host = f"[{host}]" if ":" in host else host
    netloc = f"{userinfo}{at}{shown_host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def delete_run_keys(url: str, run_id: str) -> int:
    """Delete every key under ``countbench:<run_id>:`` on every master of the cluster that
    ``url`` belongs to (SCAN MATCH on each master, then UNLINK key by key, pipelined);
    return how many. Never FLUSH. A master that cannot be reached is a RedisUnavailable
    naming it, raised after the others are cleaned."""
    namespace = KeyNamespace(run_id)
    deleted = 0
    failures: list[str] = []
    for host, port in cluster_masters(url):
        try:
            with _from_url(_node_url(url, host, port), timeout=10.0) as client:
                batch: list[str] = []
                for key in client.scan_iter(match=namespace.pattern(), count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        deleted += _unlink_each(client, batch)
                        batch = []
                deleted += _unlink_each(client, batch)
        except redis.exceptions.RedisError as exc:
            failures.append(f"{host}:{port}: {_one_line(str(exc)) or type(exc).__name__}")
    if failures:
        raise RedisUnavailable(
            f"could not delete keys {namespace.prefix}* on every cluster master "
            f"({deleted} deleted): {'; '.join(failures)}"
        )
    return deleted


def _unlink_each(client: redis.Redis, keys: list[str]) -> int:
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.unlink(key)
    return sum(int(n) for n in pipe.execute())
