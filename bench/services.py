"""The servers a run needs, for its whole length: started here and stopped at the end (also
on error and Ctrl-C), or the user's own Redis, cleaned of this run's keys at the end.

A user's Redis (``--redis-url`` or ``REDIS_URL``) is never flushed: every key countbench
writes there is under ``countbench:<run-id>:`` and only those are deleted. Its URL reaches
the report only with the password replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..strategies.base import ServiceStrategy, Strategy


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
        yield run


def _redis(
    stack: contextlib.ExitStack, run: RunServices, run_id: str, redis_url: str | None
) -> None:
    from .servers.redis_server import KeyNamespace, RedisServer, check_redis_url, redact_url

    if redis_url:
        version = check_redis_url(redis_url)
        run.endpoints["redis"] = redis_url
        run.facts["redis"] = {
            "origin": "user's server (--redis-url)",
            "url": redact_url(redis_url),
            "version": version,
            "key_prefix": KeyNamespace(run_id).prefix,
        }
        stack.callback(_delete_run_keys, redis_url, run_id)
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


def _delete_run_keys(url: str, run_id: str) -> None:
    import redis

    from .servers.redis_server import KeyNamespace

    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    try:
        KeyNamespace(run_id).delete_all(client)
    finally:
        client.close()
