"""``central``: the article's central counter service, as a real server process.

One countbench-started server (``countbench.bench.servers.central``, asyncio on loopback)
holds the authoritative session table; every login, logout, heartbeat and read is a round
trip to it from the worker's own connection (or one per ``pipeline`` operations). The
server applies each request atomically in one thread, with the session semantics of
``session`` (expiry after the timeout, no double login). Consistency: strong, at the cost
of a network hop per operation and a single point of failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .base import AsyncClientNode, ClientNode, Consistency, ServiceStrategy
from .batching import AsyncBatchingClient, Batch, BatchingClient
from .spec import SESSIONS

if TYPE_CHECKING:
    from .central_protocol import AsyncCentralClient


def address(endpoint: str) -> tuple[str, int]:
    """``central://HOST:PORT`` -> (host, port)."""
    parts = urlsplit(endpoint)
    if parts.scheme != "central" or not parts.hostname or parts.port is None:
        raise ValueError(f"not a central service URL: {endpoint!r}")
    return parts.hostname, parts.port


def _namespace(namespace: str) -> str:
    return namespace.replace(" ", "_")


class CentralClientNode(BatchingClient):
    """A worker's blocking connection, batching up to ``depth`` operations per round trip."""

    def __init__(self, endpoint: str, namespace: str, depth: int, timeout: float = 10.0) -> None:
        from .central_protocol import CentralClient

        host, port = address(endpoint)
        self._client = CentralClient(host, port, _namespace(namespace), timeout=timeout)
        self._batch = Batch(depth)

    def write(self, kind: str, user: str, now: float) -> None:
        if self._batch.depth == 1:
            self._client.pipeline([(kind, user, now)])
        elif self._batch.add((kind, user, now)):
            self.flush()

    def count(self, now: float) -> int:
        self.flush()
        return self._client.count(now)

    def flush(self) -> None:
        if self._batch.requests:
            self._client.pipeline(self._batch.take())

    def disconnect(self) -> None:
        self._client.close()


class AsyncCentralClientNode(AsyncBatchingClient):
    """The asyncio twin of :class:`CentralClientNode`."""

    def __init__(self, depth: int, timeout: float = 10.0) -> None:
        self._client: AsyncCentralClient | None = None
        self._timeout = timeout
        self._batch = Batch(depth)

    async def connect(self, endpoint: str, namespace: str) -> AsyncCentralClientNode:
        from .central_protocol import AsyncCentralClient

        host, port = address(endpoint)
        self._client = await AsyncCentralClient.open(
            host, port, _namespace(namespace), self._timeout
        )
        return self

    @property
    def client(self) -> AsyncCentralClient:
        assert self._client is not None, "connect() first"
        return self._client

    async def write(self, kind: str, user: str, now: float) -> None:
        if self._batch.add((kind, user, now)):
            await self.flush()

    async def count(self, now: float) -> int:
        await self.flush()
        return await self.client.count(now)

    async def flush(self) -> None:
        if self._batch.requests:
            await self.client.pipeline(self._batch.take())

    async def disconnect(self) -> None:
        await self.client.close()


class CentralCounterService(ServiceStrategy):
    name = "central"
    summary = "Central counter service: one server process holds every session; a hop per op."
    consistency = Consistency.STRONG
    specification = SESSIONS
    article_approach = "Central service"
    service = "central"
    syncs = False  # a sync only flushes the queued writes

    def client(self, namespace: str, worker: int) -> ClientNode:
        config = self.config
        return CentralClientNode(
            config.endpoint, namespace, config.pipeline, timeout=config.request_timeout
        )

    async def async_client(self, namespace: str, worker: int) -> AsyncClientNode:
        node = AsyncCentralClientNode(self.config.pipeline, self.config.request_timeout)
        return await node.connect(self.config.endpoint, namespace)
