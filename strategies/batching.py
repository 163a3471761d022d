"""What every networked client node shares: writes as requests, sent in batches.

A write (login, logout, heartbeat) is the request ``(kind, user, now)``; a client queues it
in a :class:`Batch` and sends the batch in one round trip once it holds ``depth``
requests (the run's pipeline depth), or before a read, at a sync and at close.
:class:`BatchingClient` and :class:`AsyncBatchingClient` are the blocking and asyncio
shells of that contract: a subclass says how a request is written, how a batch is
flushed and how the connection is closed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

from .closing import Closing

Request = tuple[str, str, float]


class Batch:
    """Requests waiting for one round trip: up to ``depth`` of them."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.requests: list[Request] = []

    def add(self, request: Request) -> bool:
        """Queue ``request``; whether the batch is now full (time to send it)."""
        self.requests.append(request)
        return len(self.requests) >= self.depth

    def take(self) -> list[Request]:
        """Every queued request, oldest first; the batch is then empty."""
        requests, self.requests = self.requests, []
        return requests


class WritesByKind(ABC):
    """A node whose three writes are one method, :meth:`write`, named by their kind."""

    @abstractmethod
    def write(self, kind: str, user: str, now: float) -> None:
        """Apply or queue the write ``kind`` ("login", "logout" or "heartbeat")."""

    def login(self, user: str, now: float) -> None:
        self.write("login", user, now)

    def logout(self, user: str, now: float) -> None:
        self.write("logout", user, now)

    def heartbeat(self, user: str, now: float) -> None:
        self.write("heartbeat", user, now)


class BatchingClient(WritesByKind, Closing):
    """A blocking client node: ``sync`` flushes; ``close`` flushes, then disconnects even
    if the flush failed. Subclasses define ``write``, ``flush``, ``disconnect`` and
    ``count``."""

    @abstractmethod
    def flush(self) -> None:
        """Send every queued request and wait for the answers."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the connections."""

    @abstractmethod
    def count(self, now: float) -> int: ...

    def sync(self, now: float) -> None:
        self.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.disconnect()


class AsyncBatchingClient(ABC):
    """The asyncio shell of :class:`BatchingClient`: the same contract, awaited."""

    @abstractmethod
    async def write(self, kind: str, user: str, now: float) -> None: ...

    @abstractmethod
    async def flush(self) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def count(self, now: float) -> int: ...

    async def login(self, user: str, now: float) -> None:
        await self.write("login", user, now)

    async def logout(self, user: str, now: float) -> None:
        await self.write("logout", user, now)

    async def heartbeat(self, user: str, now: float) -> None:
        await self.write("heartbeat", user, now)

    async def sync(self, now: float) -> None:
        await self.flush()

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self.disconnect()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
