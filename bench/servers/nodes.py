"""A hosted node's server: its protocol served on loopback by a thread of the process the
node lives in (``aggregate``: each node answers the other nodes' reads beside its workers).

:class:`NodeServer` serves any :class:`~countbench.strategies.central_protocol.SessionRequests`
with the central service's own shell (:class:`~.central.LineServer`), on an event loop in
a daemon thread; the requests object is the node's, so its lock, not the server, keeps
the node's workers and its peers apart.

Run alone (``python -m countbench.bench.servers.nodes``), it serves an empty node and
prints ``READY <host> <port>``: a node for tests and faults to stop with SIGSTOP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
from collections.abc import Sequence

from ...strategies.central_protocol import CHUNK, CentralServiceError, SessionRequests
from ...strategies.closing import Closing
from .central import LineServer

START_TIMEOUT = 10.0


class NodeServer(Closing):
    """Serves ``requests`` on ``host`` (a free port) from a thread of this process.

    The constructor returns once it listens (``address`` is then ``host:port``), or raises
    :class:`~countbench.strategies.central_protocol.CentralServiceError`. ``close`` stops
    it and closes its connections (idempotent).
    """

    def __init__(self, requests: SessionRequests, host: str = "127.0.0.1") -> None:
        self._server = LineServer(requests)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.address = ""
        self._thread = threading.Thread(
            target=self._run, args=(host,), name="countbench-node-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._failure is not None:
            self.close()
            why = self._failure or f"not listening after {START_TIMEOUT:g} s"
            raise CentralServiceError(f"a node cannot serve on {host}: {why}")

    def _run(self, host: str) -> None:
        try:
            asyncio.run(self._serve(host))
        except BaseException as exc:  # reported by the constructor
            self._failure = exc
            self._ready.set()

    async def _serve(self, host: str) -> None:
        server = await asyncio.start_server(self._server.serve_connection, host, 0, limit=CHUNK)
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

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=START_TIMEOUT)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve one empty node until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m countbench.bench.servers.nodes", description="One empty node."
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="session timeout, s")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with NodeServer(SessionRequests(args.timeout)) as server:
        host, port = server.address.rsplit(":", 1)
        print(f"READY {host} {port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
