"""A real-fault run: client processes work against a real server while it is paused and
crashed on a schedule; then every read and the final count are checked.

Each client is a spawned process with its own connection (opened inside it, through the
strategy's own ``client``) and its own users. It picks, with its seeded generator, a read
or an operation on one of its users: login if it believes the user offline, logout or
heartbeat if online. A request that times out or loses its connection is retried (up to
``retries`` times, on a new connection, after a pause of half the timeout); a user whose
operation did not end ``ok`` is never touched again, so the counter check stays exact
(see :mod:`.history`). Clients run at most ``rate`` operations per second each and call
the client's ``sync`` every ``sync_every`` operations (where ``eventual`` refreshes its
cached total).

A hosted strategy (``aggregate``) has no server to fault: each client process hosts one
node (its users' sessions, beside them) and the nodes read each other over loopback, so
``--nodes`` is the number of clients. Its fault is ``pause`` of client 0's process, node
and users together (a kill would take that client's history with it); the other clients'
reads are partial meanwhile. The clients keep their nodes up until the final read, which
the runner makes from a node of its own that holds no users.

The schedule: the faults are spread evenly over ``duration``; ``pause`` stops the server
for ``pause_factor`` times the request timeout (so requests time out and are retried while
the first attempts wait in the server's socket buffers), ``kill`` SIGKILLs it and restarts
it ``down`` seconds later. After the clients stop (every fault healed by then), the server
is given a moment and read once more: the final count.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...strategies.base import HostedStrategy
from ...strategies.errors import UsageError
from ..fault_names import REAL
from ..servers import reaper
from ..workload import MAX_USERS
from .history import CounterCheck, Op, Outcome, check_counter
from .targets import (
    HOSTED,
    HOSTED_FAULTS,
    FaultTarget,
    HostedTarget,
    check_supported,
    open_target,
)

FAULTS = REAL
SESSION_TIMEOUT = 86_400.0  # no session expires during a run: the check counts every login
_START_MARGIN = 0.2
_JOIN_GRACE = 30.0


class RealFaultError(UsageError):
    """Bad input (one line, for the CLI)."""


class RealFaultRunFailed(RealFaultError):
    """A run that could not be completed: a client process failed or hung (one line)."""

    exit_code = 1


#: Limits of a real-fault run: each client and node server is a process of this machine.
WHOLE_LIMITS = {"clients": 64, "users": MAX_USERS, "nodes": 64, "sync_every": 10_000_000}
MAX_RETRIES = 100
SECONDS_LIMITS = {"duration": 3600.0, "timeout": 60.0, "rate": 1e6}


@dataclass(frozen=True)
class RealFaultConfig:
    strategy: str
    faults: tuple[str, ...] = FAULTS
    seed: int = 1
    clients: int = 4
    users: int = 50
    duration: float = 6.0
    timeout: float = 0.4
    retries: int = 3
    rate: float = 1000.0
    read_ratio: float = 0.2
    pause_factor: float = 2.5
    down: float = 0.5
    persist: bool = False
    nodes: int = 3  # node servers of aggregate-remote and eventual
    sync_every: int = 100  # operations of a client between its sync points

    def validate(self) -> None:
        unknown = [f for f in self.faults if f not in FAULTS]
        if unknown:
            raise RealFaultError(
                f"unknown real fault {unknown[0]!r}; choose from {', '.join(FAULTS)} or none"
            )
        for name, top in WHOLE_LIMITS.items():
            value = getattr(self, name)
            if not 1 <= value <= top:
                raise RealFaultError(f"--{name.replace('_', '-')} must be from 1 to {top:,}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise RealFaultError(f"--retries must be from 0 to {MAX_RETRIES}")
        for name, most in SECONDS_LIMITS.items():
            seconds = getattr(self, name)
            if not 0 < seconds <= most:  # also false for NaN
                raise RealFaultError(f"--{name} must be a positive number, at most {most:g}")


@dataclass(frozen=True)
class FaultWindow:
    name: str
    start: float  # seconds since the clients started
    end: float


@dataclass
class RealFaultResult:
    config: RealFaultConfig
    ops: list[Op]
    final: Op | None
    windows: list[FaultWindow]
    target: dict[str, Any]
    check: CounterCheck = field(init=False)

    def __post_init__(self) -> None:
        self.check = check_counter(self.ops, self.final)

    def per_client(self) -> list[dict[str, int]]:
        rows = []
        for client in range(self.config.clients):
            mine = [op for op in self.ops if op.client == client]
            row = {"client": client, "ops": len(mine)}
            for outcome in Outcome:
                row[str(outcome)] = sum(op.outcome is outcome for op in mine)
            row["retried"] = sum(op.attempts > 1 for op in mine)
            rows.append(row)
        return rows


# ------------------------------------------------------------------------ the clients


@dataclass(frozen=True)
class _ClientSpec:
    strategy: str
    endpoint: str
    namespace: str
    client: int
    users: int
    seed: int
    timeout: float
    retries: int
    rate: float
    read_ratio: float
    sync_every: int = 100
    hosted: bool = False


def _is_refusal(exc: BaseException) -> bool:
    """An error reply: the server refused the command, so it had no effect."""
    import redis.exceptions

    return isinstance(exc, redis.exceptions.ResponseError)


class _Client:
    """One client process's loop (see the module docstring)."""

    def __init__(self, spec: _ClientSpec, t0: float) -> None:
        from ...strategies.base import ServiceStrategy, StrategyConfig
        from ...strategies.registry import discover

        cls = discover()[spec.strategy]
        assert issubclass(cls, ServiceStrategy | HostedStrategy)
        config = StrategyConfig(
            endpoint=spec.endpoint,
            session_timeout=SESSION_TIMEOUT,
            request_timeout=spec.timeout,
        )
        self.strategy = cls(config)
        self.spec, self.t0 = spec, t0
        self.node: Any = None
        self.host: Any = None  # a hosted strategy's node, in this process
        self.server: Any = None  # and its server
        self.peers: list[str] = []  # and every node's address

    def open(self) -> Any:
        """A new client: on the server, or on this process's node."""
        strategy = self.strategy
        if isinstance(strategy, HostedStrategy):
            return strategy.client(self.host, self.peers, self.spec.client)
        return strategy.client(self.spec.namespace, self.spec.client)

    def start_node(self, node_id: int) -> str:
        """Host node ``node_id`` of a hosted strategy here; its address."""
        from ..servers.nodes import NodeServer

        assert isinstance(self.strategy, HostedStrategy)
        self.host = self.strategy.host(node_id, self.spec.namespace)
        self.server = NodeServer(self.host.requests)
        return str(self.server.address)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _drop(self) -> None:
        node, self.node = self.node, None
        with contextlib.suppress(Exception):
            node.close()

    def _attempt(self, kind: str, user: str) -> tuple[Outcome, int | None]:
        if self.node is None:
            try:
                self.node = self.open()
            except Exception:
                return Outcome.FAIL, None  # nothing was sent
        try:
            if kind == "count":
                return Outcome.OK, int(self.node.count(self.now()))
            getattr(self.node, kind)(user, self.now())
            return Outcome.OK, None
        except Exception as exc:
            self._drop()
            return (Outcome.FAIL if _is_refusal(exc) else Outcome.INFO), None

    def operate(self, kind: str, user: str) -> Op:
        start = self.now()
        unknown = False
        attempts = 0
        while True:
            attempts += 1
            outcome, value = self._attempt(kind, user)
            unknown = unknown or outcome is Outcome.INFO
            if outcome is Outcome.OK or attempts > self.spec.retries:
                break
            time.sleep(self.spec.timeout / 2)
        if outcome is Outcome.FAIL and unknown:
            outcome = Outcome.INFO
        return Op(self.spec.client, kind, user, start, self.now(), outcome, attempts, value)

    def run(self, stop_at: float) -> list[Op]:
        spec = self.spec
        rng = random.Random(f"{spec.seed}:{spec.client}")
        users = [f"c{spec.client}u{i}" for i in range(spec.users)]
        online: dict[str, bool] = dict.fromkeys(users, False)
        ops: list[Op] = []
        gap = 1.0 / spec.rate
        next_at = self.now()
        while self.now() < stop_at and online:
            if rng.random() < spec.read_ratio:
                kind, user = "count", ""
            else:
                user = rng.choice(list(online))
                if not online[user]:
                    kind = "login"
                else:
                    kind = "heartbeat" if rng.random() < 0.2 else "logout"
            op = self.operate(kind, user)
            ops.append(op)
            if len(ops) % spec.sync_every == 0 and self.node is not None:
                try:  # a sync point: what eventual's cached total is refreshed at
                    self.node.sync(self.now())
                except Exception:
                    self._drop()
            if op.delta:
                if op.outcome is Outcome.OK:
                    online[user] = op.delta > 0
                else:
                    del online[user]  # its state is unknown from now on
            next_at = max(next_at + gap, self.now() - 1.0)
            delay = next_at - self.now()
            if delay > 0:
                time.sleep(delay)
        self._drop()
        return ops


def _client_main(
    spec: _ClientSpec, ready: Any, go: Any, start: Any, stop: Any, out: Any, peers: Any, done: Any
) -> None:
    client: _Client | None = None
    try:
        client = _Client(spec, 0.0)  # imports and the first connection, before the start
        address = client.start_node(spec.client) if spec.hosted else None
        if address is not None:  # a hosted node: its peers' addresses first
            ready.put((spec.client, address))
            client.peers = peers.get(timeout=_JOIN_GRACE)
        with contextlib.suppress(Exception):
            client.node = client.open()
        if address is None:
            ready.put((spec.client, None))
        go.wait()
        client.t0 = start.value
        out.put((spec.client, [op.as_row() for op in client.run(stop.value)], None))
        if client.host is not None:
            done.wait(_JOIN_GRACE)  # the node serves the final read
    except BaseException as exc:  # the parent reports it in one line
        out.put((spec.client, [], f"{type(exc).__name__}: {exc}"))
    finally:
        if client is not None and client.server is not None:
            client.server.close()


# ------------------------------------------------------------------------ the run


def schedule(config: RealFaultConfig) -> list[tuple[str, float, float]]:
    """(fault, start, length) for each fault, spread evenly over the run."""
    plan = []
    count = len(config.faults)
    for i, name in enumerate(config.faults):
        length = config.pause_factor * config.timeout if name == "pause" else config.down
        middle = config.duration * (i + 1) / (count + 1)
        plan.append((name, max(0.0, middle - length / 2), length))
    return plan


def _final_read(
    strategy_name: str, endpoint: str, namespace: str, t0: float, peers: Sequence[str] = ()
) -> Op | None:
    """One read on a fresh connection (client -1, 5 s timeout, no retry), or None. With
    ``peers`` (a hosted strategy's nodes), from a node of its own that holds no users."""
    spec = _ClientSpec(
        strategy_name,
        endpoint,
        namespace,
        client=-1,
        users=0,
        seed=0,
        timeout=5.0,
        retries=0,
        rate=1.0,
        read_ratio=1.0,
    )
    client = _Client(spec, t0)
    if peers:
        client.peers = [*peers, client.start_node(len(peers))]
    try:
        op = client.operate("count", "")
        client._drop()
    finally:
        if client.server is not None:
            client.server.close()
    return op if op.outcome is Outcome.OK else None


def run_real_faults(
    config: RealFaultConfig, progress: Callable[[str], None] = lambda _: None
) -> RealFaultResult:
    """Run ``config`` (see the module docstring); the server is gone when this returns."""
    from ...strategies.registry import discover
    from ..servers.redis_server import new_run_id

    config.validate()
    available = discover()
    if config.strategy not in available:
        raise RealFaultError(f"unknown strategy {config.strategy!r}")
    try:
        service = check_supported(available[config.strategy], config.persist)
    except Exception as exc:
        raise RealFaultError(str(exc)) from None
    if service == HOSTED:
        others = [f for f in config.faults if f not in HOSTED_FAULTS]
        if others:
            raise RealFaultError(
                f"{config.strategy}'s node 0 lives in client 0's process: it takes "
                f"{', '.join(HOSTED_FAULTS)}, not {others[0]} (which would take the "
                "client's history with it); aggregate-remote's node servers take kill"
            )
    else:
        progress(f"starting the {service} server")
    target = open_target(service, config.persist, SESSION_TIMEOUT, config.nodes)
    try:
        return _run(config, target, f"countbench:{new_run_id()}:", progress)
    finally:
        target.close()


def _run(
    config: RealFaultConfig, target: FaultTarget, namespace: str, progress: Callable[[str], None]
) -> RealFaultResult:
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go, done = ctx.Event(), ctx.Event()
    hosted = isinstance(target, HostedTarget)
    inboxes = [ctx.Queue() for _ in range(config.clients)]
    start, stop = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    procs = []
    for client in range(config.clients):
        spec = _ClientSpec(
            config.strategy,
            target.endpoint,
            namespace,
            client,
            config.users,
            config.seed,
            config.timeout,
            config.retries,
            config.rate,
            config.read_ratio,
            config.sync_every,
            hosted,
        )
        args = (spec, ready, go, start, stop, out, inboxes[client], done)
        proc = ctx.Process(target=_client_main, args=args)
        proc.start()
        reaper.watch(proc.pid)
        procs.append(proc)
    try:
        progress(f"starting {config.clients} client processes")
        addresses = _wait_ready(ready, procs)
        peers = [addresses[c] or "" for c in range(config.clients)] if hosted else []
        if isinstance(target, HostedTarget):
            assert procs[0].pid is not None
            target.attach(procs[0].pid)
            for inbox in inboxes:
                inbox.put(peers)
        t0 = time.monotonic() + _START_MARGIN
        start.value, stop.value = t0, config.duration
        go.set()
        windows = _inject(config, target, t0, progress)
        progress("waiting for the clients")
        results = _collect(config, out, procs)
        time.sleep(config.timeout)  # every fault was healed by _inject; let the server settle
        final = _final_read(config.strategy, target.endpoint, namespace, t0, peers)
        facts = target.facts()
    finally:
        done.set()
        for proc in procs:
            proc.join(timeout=5 if hosted else 0)
            if proc.is_alive():
                proc.kill()
            proc.join()
            reaper.forget(proc.pid)
    ops = sorted((op for rows in results for op in rows), key=lambda op: (op.start, op.client))
    return RealFaultResult(config, ops, final, windows, facts)


def _inject(
    config: RealFaultConfig, target: FaultTarget, t0: float, progress: Callable[[str], None]
) -> list[FaultWindow]:
    windows = []
    for name, at, length in schedule(config):
        _sleep_until(t0 + at)
        begun = time.monotonic() - t0
        progress(f"{name} at {begun:.2f} s")
        if name == "pause":
            target.pause()
            _sleep_until(t0 + at + length)
            target.resume()
        else:
            target.crash()
            _sleep_until(t0 + at + length)
            target.restart()
        windows.append(FaultWindow(name, begun, time.monotonic() - t0))
    return windows


def _wait_ready(ready: Any, procs: Sequence[Any]) -> dict[int, str | None]:
    """Every client's ready message: its node's address (hosted strategies) or None."""
    deadline = time.monotonic() + 60.0
    addresses: dict[int, str | None] = {}
    while len(addresses) < len(procs):
        try:
            client, address = ready.get(timeout=0.2)
            addresses[client] = address
        except queue.Empty:
            dead = [p for p in procs if p.exitcode is not None]
            if dead:
                raise RealFaultRunFailed(
                    f"a client process exited with status {dead[0].exitcode} at start"
                ) from None
            if time.monotonic() > deadline:
                raise RealFaultRunFailed("the client processes did not start in 60 s") from None
    return addresses


def _collect(config: RealFaultConfig, out: Any, procs: Sequence[Any]) -> list[list[Op]]:
    deadline = (
        time.monotonic() + config.duration + (config.retries + 1) * config.timeout * 2 + _JOIN_GRACE
    )
    results: list[list[Op]] = [[] for _ in procs]
    for _ in procs:
        try:
            client, rows, error = out.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise RealFaultRunFailed("a client process did not finish in time") from None
        if error is not None:
            raise RealFaultRunFailed(f"client {client} failed: {error}")
        results[client] = [Op.from_row(row) for row in rows]
    return results


def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)
