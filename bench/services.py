"""The servers a run needs, for its whole length: started here and stopped at the end (also
on error and Ctrl-C), or the user's own Redis, cleaned of this run's keys at the end.

A user's Redis (``--redis-url`` or ``REDIS_URL``) is never flushed: every key countbench
writes there is under ``countbench:<run-id>:`` and only those are deleted. Its URL reaches
the report only with the password replaced.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..strategies.base import ServesItself, ServiceStrategy, Strategy
from ..strategies.errors import UsageError

#: The services countbench starts itself.
BUILT_IN = ("redis", "redis-cluster", "central", "nodes")


@dataclass
class RunServices:
    #: Service name -> URL the strategies connect to (may hold a password: never printed).
    endpoints: dict[str, str] = field(default_factory=dict)
    #: Service name -> what served the run, safe to print and to store in a report.
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)


def needed(classes: Iterable[type[Strategy]]) -> set[str]:
    return {c.service for c in classes if issubclass(c, ServiceStrategy)}


@contextlib.contextmanager
def provide(
    services: set[str],
    run_id: str,
    session_timeout: float,
    nodes: int,
    redis_url: str | None = None,
) -> Iterator[RunServices]:
    """Start (or check) every service in ``services``; stop or clean them on the way out.
    ``nodes`` is how many node servers the "nodes" service runs."""
    run = RunServices()
    with contextlib.ExitStack() as stack:
        if "redis" in services:
            _redis(stack, run, run_id, redis_url)
        if "redis-cluster" in services:
            _redis_cluster(stack, run, run_id, redis_url)
        if "central" in services:
            from .servers.central import CentralService

            central = stack.enter_context(CentralService(timeout=session_timeout))
            run.endpoints["central"] = f"central://{central.host}:{central.port}"
            run.facts["central"] = {
                "origin": "started by countbench",
                "address": f"{central.host}:{central.port}",
                "event_loop": central.loop,
                "pid": central.pid,
            }
        if "nodes" in services:
            from .servers.central import CentralService

            cluster = [
                stack.enter_context(CentralService(timeout=session_timeout)) for _ in range(nodes)
            ]
            addresses = [f"{node.host}:{node.port}" for node in cluster]
            run.endpoints["nodes"] = "nodes://" + ",".join(addresses)
            run.facts["nodes"] = {
                "origin": "started by countbench",
                "addresses": addresses,
                "event_loop": cluster[0].loop,
                "pids": [node.pid for node in cluster],
            }
        for service in sorted(services - set(BUILT_IN)):
            _own(stack, run, service, run_id, session_timeout)
        yield run


def _own(
    stack: contextlib.ExitStack,
    run: RunServices,
    service: str,
    run_id: str,
    session_timeout: float,
) -> None:
    """A plug-in's own server: the first strategy of that service that can start it."""
    from ..strategies.registry import discover

    for cls in discover().values():
        own = issubclass(cls, ServiceStrategy) and cls.service == service
        if own and isinstance(cls, ServesItself):
            endpoint, facts = stack.enter_context(cls.serve(run_id, session_timeout))
            run.endpoints[service] = endpoint
            run.facts[service] = {"origin": f"started by {cls.name}", **facts}
            return
    raise UsageError(
        f"no strategy can start the {service!r} service: countbench starts "
        f"{', '.join(BUILT_IN)}; a plug-in's own needs a serve() class method"
    )


def _redis(
    stack: contextlib.ExitStack, run: RunServices, run_id: str, redis_url: str | None
) -> None:
    from .servers.redis_server import KeyNamespace, RedisServer, check_redis_url, redact_url

    if redis_url:
        version = check_redis_url(redis_url)
        from .servers.redis_cluster import is_cluster_node
        from .servers.redis_server import RedisUnavailable

        if is_cluster_node(redis_url):
            raise RedisUnavailable(
                f"Redis at {redact_url(redis_url)} is a cluster node: the single-key Redis "
                "strategies need a standalone Redis (only redis-cluster can use a cluster)"
            )
        run.endpoints["redis"] = redis_url
        run.facts["redis"] = {
            "origin": "user's server (--redis-url)",
            "url": redact_url(redis_url),
            "version": version,
            "key_prefix": KeyNamespace(run_id).prefix,
        }
        stack.push(_keys_removed(_delete_run_keys, redis_url, run_id))
        return
    server = stack.enter_context(RedisServer())
    run.endpoints["redis"] = server.url
    run.facts["redis"] = {
        "origin": "started by countbench",
        "binary": str(server.binary.path),
        "binary_origin": server.binary.origin,
        "version": server.version,
        "url": redact_url(server.url),
        "pid": server.pid,
    }


def _redis_cluster(
    stack: contextlib.ExitStack, run: RunServices, run_id: str, redis_url: str | None
) -> None:
    """The "redis-cluster" service: the user's cluster when ``--redis-url`` points at a
    cluster node (INFO cluster: cluster_enabled:1; the run's keys are deleted on every
    master at the end), else a private 3-master cluster started (and stopped) here."""
    from .servers.redis_cluster import (
        RedisClusterServer,
        cluster_masters,
        delete_run_keys,
        is_cluster_node,
    )
    from .servers.redis_server import KeyNamespace, check_redis_url, redact_url

    note = None
    if redis_url:
        version = check_redis_url(redis_url)
        if is_cluster_node(redis_url):
            masters = cluster_masters(redis_url)
            run.endpoints["redis-cluster"] = redis_url
            run.facts["redis-cluster"] = {
                "origin": "user's cluster (--redis-url)",
                "url": redact_url(redis_url),
                "version": version,
                "masters": [f"{host}:{port}" for host, port in masters],
                "key_prefix": KeyNamespace(run_id).prefix,
            }
            stack.push(_keys_removed(delete_run_keys, redis_url, run_id))
            return
        note = "--redis-url is not a cluster node (cluster_enabled:0)"
    cluster = stack.enter_context(RedisClusterServer())
    run.endpoints["redis-cluster"] = cluster.url
    run.facts["redis-cluster"] = {
        "origin": "started by countbench" + (f" ({note})" if note else ""),
        "binary": str(cluster.binary.path),
        "binary_origin": cluster.binary.origin,
        "version": cluster.version,
        "masters": cluster.addresses,
        "pids": cluster.pids,
        "replicas": 0,
    }


#: Seconds the clean-up of a user's Redis keeps trying while the server does not answer,
#: and how long one try waits for an answer.
CLEANUP_PATIENCE = 30.0
CLEANUP_TIMEOUT = 5.0


def _keys_removed(
    delete: Callable[[str, str], object], url: str, run_id: str
) -> Callable[[type[BaseException] | None, BaseException | None, object], bool]:
    """The exit callback that removes the run's keys from the user's Redis, however the run
    ends. A server that does not answer (stalled, restarting) is asked again for up to
    :data:`CLEANUP_PATIENCE` seconds; if it still fails, the one line says so, names the
    failure that ended the run if one did, and how to remove the keys by hand."""
    from .servers.redis_server import KeyNamespace, RedisUnavailable, redact_url

    def on_exit(
        exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        deadline = time.monotonic() + CLEANUP_PATIENCE
        while True:
            try:
                delete(url, run_id)
                return False
            except RedisUnavailable as failure:
                if time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                pattern = f"{KeyNamespace(run_id).prefix}*"
                cause = f"{exc}; then " if isinstance(exc, Exception) else ""
                raise RedisUnavailable(
                    f"{cause}{failure}; the keys {pattern} remain in {redact_url(url)}: "
                    f"remove them with redis-cli --scan --pattern '{pattern}' | "
                    "xargs redis-cli unlink"
                ) from exc

    return on_exit


def _delete_run_keys(url: str, run_id: str) -> None:
    import redis

    from .servers.redis_server import KeyNamespace

    client = redis.Redis.from_url(
        url, socket_timeout=CLEANUP_TIMEOUT, socket_connect_timeout=CLEANUP_TIMEOUT
    )
    try:
        KeyNamespace(run_id).delete_all(client)
    finally:
        client.close()
