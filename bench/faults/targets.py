"""The servers real faults are done to: started here, crashed, restarted, paused, stopped.

A :class:`FaultTarget` is a running server countbench started itself (faults are never
done to a user's server). ``crash`` is SIGKILL; ``restart`` starts it again at the same
address (without persistence it comes back empty); ``pause``/``resume`` are
SIGSTOP/SIGCONT. ``close`` stops it for good; it also runs if the run fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any, Protocol

from ...strategies.base import HostedStrategy, ServiceStrategy, Strategy
from ...strategies.errors import UsageError

#: The services whose servers this module can start and fault.
SUPPORTED = ("redis", "redis-cluster", "central", "nodes")
#: What a hosted strategy's run is (its nodes live in the client processes).
HOSTED = "hosted"
#: The real faults a hosted node takes: a kill would take its client's history with it.
HOSTED_FAULTS = ("pause",)


class FaultTargetError(UsageError):
    """The target cannot be used (one line, for the CLI)."""


class Faultable(Protocol):
    """A server process faults can be done to: RedisServer, CentralService, a master."""

    def crash(self) -> None: ...

    def restart(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class FaultTarget(Faultable, Protocol):
    endpoint: str

    def facts(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class _Target:
    """Sends the faults to ``faulted``; a subclass starts the servers, sets ``endpoint``
    and ``faulted``, and says what they are."""

    endpoint: str
    faulted: Faultable

    def crash(self) -> None:
        self.faulted.crash()

    def restart(self) -> None:
        self.faulted.restart()

    def pause(self) -> None:
        self.faulted.pause()

    def resume(self) -> None:
        self.faulted.resume()


class RedisTarget(_Target):
    """A Redis started by countbench. With ``persist``, every write is appended to an AOF
    and fsynced before it is acknowledged (``appendfsync always``), so a crash loses
    nothing that was acknowledged."""

    def __init__(self, persist: bool) -> None:
        from ..servers.redis_server import RedisServer

        extra = ["--appendonly", "yes", "--appendfsync", "always"] if persist else []
        self.persist = persist
        self.server = self.faulted = RedisServer(extra_args=extra).start()
        self.endpoint = self.server.url

    def facts(self) -> dict[str, Any]:
        from ..servers.redis_server import redact_url

        return {
            "service": "redis",
            "origin": "started by countbench",
            "binary": str(self.server.binary.path),
            "version": self.server.binary.version,
            "url": redact_url(self.endpoint),
            "persistence": "aof, appendfsync always" if self.persist else "none",
        }

    def close(self) -> None:
        self.server.stop()


class CentralTarget(_Target):
    """The central counter service; it keeps its sessions in memory only."""

    def __init__(self, session_timeout: float) -> None:
        from ..servers.central import CentralService

        self.service = self.faulted = CentralService(timeout=session_timeout).start()
        self.endpoint = f"central://{self.service.host}:{self.service.port}"

    def facts(self) -> dict[str, Any]:
        return {
            "service": "central",
            "origin": "started by countbench",
            "address": self.endpoint.removeprefix("central://"),
            "event_loop": self.service.loop,
            "persistence": "none",
        }

    def close(self) -> None:
        self.service.stop()


class NodesTarget(_Target):
    """The node servers of ``aggregate-remote`` and ``eventual``: faults hit node 0 only (a read
    then lacks that node's users, or the node restarts without them)."""

    def __init__(self, nodes: int, session_timeout: float) -> None:
        from ..servers.central import CentralService

        self.nodes: list[CentralService] = []
        try:
            for _ in range(nodes):
                self.nodes.append(CentralService(timeout=session_timeout).start())
        except BaseException:
            self.close()
            raise
        self.faulted = self.nodes[0]
        self.endpoint = "nodes://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def facts(self) -> dict[str, Any]:
        return {
            "service": "nodes",
            "origin": "started by countbench",
            "endpoint": self.endpoint.removeprefix("nodes://"),
            "faulted": "node 0",
            "persistence": "none",
        }

    def close(self) -> None:
        for node in self.nodes:
            node.stop()


class HostedTarget:
    """A hosted strategy's node 0, which lives in client 0's process (the runner hosts one
    node per client): a pause stops that process, node and users together, so the other
    clients' reads are partial until it resumes. Call :meth:`attach` once it runs."""

    endpoint = ""

    def __init__(self) -> None:
        self.pid: int | None = None

    def attach(self, pid: int) -> None:
        self.pid = pid

    def _signal(self, signum: int) -> None:
        if self.pid is None:
            raise FaultTargetError("no client process to fault yet")
        os.kill(self.pid, signum)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def crash(self) -> None:
        raise FaultTargetError(f"a hosted node takes only {', '.join(HOSTED_FAULTS)}")

    restart = crash

    def facts(self) -> dict[str, Any]:
        return {
            "service": HOSTED,
            "origin": "nodes in the client processes, one per client",
            "faulted": "node 0 (client 0's process)",
            "persistence": "none",
        }

    def close(self) -> None:
        if self.pid is not None:  # never leave it stopped
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)


class ClusterTarget:
    """A three-master Redis Cluster; faults hit master 1 (master 0 is the clients' seed).
    A restarted master comes back empty, with its slots."""

    FAULTED = 1

    def __init__(self) -> None:
        from ..servers.redis_cluster import RedisClusterServer

        self.cluster = RedisClusterServer().start()
        self.endpoint = self.cluster.url

    def crash(self) -> None:
        self.cluster.kill_master(self.FAULTED)

    def restart(self) -> None:
        self.cluster.restart_master(self.FAULTED)

    def pause(self) -> None:
        self.cluster.pause_master(self.FAULTED)

    def resume(self) -> None:
        self.cluster.resume_master(self.FAULTED)

    def facts(self) -> dict[str, Any]:
        return {
            "service": "redis-cluster",
            "origin": "started by countbench",
            "binary": str(self.cluster.binary.path),
            "version": self.cluster.binary.version,
            "masters": self.cluster.addresses,
            "faulted": f"master {self.FAULTED}",
            "persistence": "none",
        }

    def close(self) -> None:
        self.cluster.stop()


def real_faults_for(cls: type[Strategy], faults: tuple[str, ...]) -> tuple[str, ...]:
    """Of ``faults``, those ``cls``'s target takes (a hosted node: only a pause)."""
    if issubclass(cls, HostedStrategy):
        return tuple(f for f in faults if f in HOSTED_FAULTS)
    return faults


def check_supported(cls: type[Strategy], persist: bool) -> str:
    """The service ``cls`` needs, or :class:`FaultTargetError` saying why it cannot be
    faulted here."""
    if issubclass(cls, HostedStrategy):
        if persist:
            raise FaultTargetError(f"--persist: {cls.name}'s nodes keep state in memory only")
        return HOSTED
    if not issubclass(cls, ServiceStrategy) or cls.service not in SUPPORTED:
        raise FaultTargetError(
            f"real faults need a strategy served by "
            f"{' or '.join(SUPPORTED)} ({cls.name} is not); "
            "replicated strategies run under the simulator instead"
        )
    if persist and cls.service != "redis":
        raise FaultTargetError(f"--persist: the {cls.service} service keeps state in memory only")
    return cls.service


def open_target(service: str, persist: bool, session_timeout: float, nodes: int) -> FaultTarget:
    """Start the server(s) for ``service`` (see :func:`check_supported`)."""
    if service == "redis":
        return RedisTarget(persist)
    if service == "nodes":
        return NodesTarget(nodes, session_timeout)
    if service == "redis-cluster":
        return ClusterTarget()
    if service == HOSTED:
        return HostedTarget()
    return CentralTarget(session_timeout)
