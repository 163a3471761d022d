"""A node that lives in a worker's process: its session table beside the workers that
write to it, and a loopback server that answers the other nodes' reads.

:class:`NodeHost` is what a hosted strategy's node (``aggregate``) is at run time. The
workers of the node call ``login``/``logout``/``heartbeat``/``count`` on it directly: a
lock and a :class:`~countbench.strategies.session.SessionTracker` update, no I/O. The
other nodes read its count over TCP on loopback, in the central service's protocol (see
:mod:`.central`), served by an event loop in a daemon thread of this process; a read
request takes the same lock. The server knows one namespace, the run's; a ``D`` request
empties the table as it does on the central service.

Run alone (``python -m countbench.bench.servers.nodes``), a node hosts an empty table
and prints ``READY <host> <port>``: a node for tests and faults to stop with SIGSTOP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from .central import _CHUNK, CentralServiceError, _Connection, _Namespace, _Server

START_TIMEOUT = 10.0


class _LockedServer(_Server):
    """The central protocol on one namespace whose table local workers also write."""

    def __init__(self, namespace: str, state: _Namespace, lock: threading.Lock) -> None:
        super().__init__(state.tracker.timeout)
        self.namespaces[namespace] = state
        self.lock = lock

    def handle(self, conn: _Connection, line: bytes) -> bytes:
        with self.lock:
            return super().handle(conn, line)


class NodeHost:
    """One node: a session table in this process and a loopback server for its peers.

    The constructor starts the server and returns once it listens (``address`` is then
    ``host:port``); :class:`~countbench.bench.servers.central.CentralServiceError` if it
    cannot. Calls from any thread are serialised by one lock. ``close`` stops the server
    and closes its connections (idempotent).
    """

    def __init__(
        self, node_id: int, namespace: str, timeout: float, host: str = "127.0.0.1"
    ) -> None:
        self.node_id, self.namespace = node_id, namespace
        self.lock = threading.Lock()
        self.state = _Namespace(timeout)
        self._server = _LockedServer(namespace, self.state, self.lock)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.address = ""
        self._thread = threading.Thread(
            target=self._run, args=(host,), name=f"countbench-node-{node_id}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._failure is not None:
            self.close()
            why = self._failure or f"not listening after {START_TIMEOUT:g} s"
            raise CentralServiceError(f"node {node_id} cannot serve on {host}: {why}")

    def _run(self, host: str) -> None:
        try:
            asyncio.run(self._serve(host))
        except BaseException as exc:  # reported by the constructor
            self._failure = exc
            self._ready.set()

    async def _serve(self, host: str) -> None:
        server = await asyncio.start_server(self._server.serve_connection, host, 0, limit=_CHUNK)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        self.address = f"{bound_host}:{bound_port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            self._server.close_connections()
            await server.wait_closed()
            # Let each connection's handler see its end, not be cancelled by asyncio.run.
            handlers = asyncio.all_tasks() - {asyncio.current_task()}
            if handlers:
                await asyncio.wait(handlers, timeout=START_TIMEOUT)

    def login(self, user: str, now: float) -> None:
        with self.lock:
            self.state.tracker.login(user, now)

    def logout(self, user: str, now: float) -> None:
        with self.lock:
            self.state.tracker.logout(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        with self.lock:
            self.state.tracker.heartbeat(user, now)

    def count(self, now: float) -> int:
        with self.lock:
            return self.state.tracker.count(now)

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=START_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Host one empty node until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m countbench.bench.servers.nodes", description="One aggregate node."
    )
    parser.add_argument("--namespace", default="countbench:node:")
    parser.add_argument("--timeout", type=float, default=1800.0, help="session timeout, s")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with NodeHost(0, args.namespace, args.timeout) as node:
        host, port = node.address.rsplit(":", 1)
        print(f"READY {host} {port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
