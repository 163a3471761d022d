"""How long the simulator takes for a big scenario: the scale target of issue 6.

    python -m countbench.bench.sim.speed [--strategies pncounter,gcounter,compact,orset]
        [--nodes 100] [--users 10000] [--operations 100000] [--fanout 3|all]
        [--faults partition] [--seed 1] [--limit 60] [--no-stop]

Each strategy runs in its own child process (a fresh interpreter, the trace hashed but not
kept). The parent prints, per strategy, the wall-clock seconds of ``run_scenario`` as the
child measured them, with the events, deliveries, bytes and virtual seconds simulated, and
for a strategy its verdict, the max and mean |count - truth| over the samples, and the p99
of the sampled counts' age (seconds since the specification last allowed each); a child
still running at ``--limit`` seconds is stopped and shown as over the limit (``--no-stop``
lets it finish, to measure its full time). Exit status: 0 when every strategy finished
within the limit, 1 when one did not, 2 with one ``countbench: error: ...`` line for bad
input.

Before the strategies it times the simulator alone: the same scenario on idle replicas
that keep their own users, broadcast an empty message at every sync and merge nothing
(clients, heartbeats, syncs, routing, the knowledge and error bookkeeping; no strategy
work). A strategy's time less that is what its own code costs.

Cost model, to read the times: every node syncs once per ``sync_interval`` of virtual
time and its broadcast reaches ``fanout`` peers (``all``: the other ``nodes - 1``), so a
run delivers about ``nodes * fanout * (stop + grace) / sync_interval`` messages, each
merged by the receiver (a full-state CRDT merge is linear in its state: the nodes for a
counter). ``orset`` sends a digest (one entry per writer) and gets an answer back from each
peer; its cost is the updates themselves: every login, heartbeat and logout changes a tag,
and each such change is merged once by each of the nodes. The virtual time the operations
span shrinks as the users grow (more users, more events a second). The default scenario,
100 users a node gossiping to 3 peers, is the shape of a large cluster; ``--users 1000
--fanout all`` is the old one, where every node sends its whole state to the 99 others
each second, through the long virtual span 1,000 users take to make 100,000 operations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any, NoReturn

from ...strategies.base import Consistency, Message, Replica, ReplicatedStrategy
from .errors import SimUsageError
from .presets import standard_scenario
from .runner import resolve_strategy, run_scenario
from .scenario import fanout_peers

DEFAULT_STRATEGIES = "pncounter,gcounter,compact,orset"


class IdleReplica:
    """Counts the users logged in here and nothing else: each sync broadcasts an empty
    message, and what arrives is ignored. A yardstick, in no registry: it never converges."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.users: set[str] = set()

    def login(self, user: str, now: float) -> None:
        self.users.add(user)

    def logout(self, user: str, now: float) -> None:
        self.users.discard(user)

    def heartbeat(self, user: str, now: float) -> None:
        pass

    def count(self, now: float) -> int:
        return len(self.users)

    def sync(self, now: float) -> list[Message]:
        return [Message(self.node_id, None, b"")]

    def receive(self, message: Message, now: float) -> list[Message]:
        return []


class IdleStrategy(ReplicatedStrategy):
    """:class:`IdleReplica` per node: what the simulator costs without a strategy's work."""

    name = "simulator alone"
    summary = "idle replicas: an empty broadcast per sync, nothing merged"
    consistency = Consistency.EVENTUAL
    modes = frozenset()

    def replica(self, node_id: int) -> Replica:
        return IdleReplica(node_id)


def measure(
    strategy: str,
    nodes: int,
    operations: int,
    faults: str,
    seed: int,
    fanout: int | None = None,
    users: int = 1000,
) -> dict[str, Any]:
    """Run one scenario in this process; its wall-clock time and size
    (``strategy`` :attr:`IdleStrategy.name`: the simulator alone)."""
    scenario = standard_scenario(
        faults, nodes=nodes, operations=operations, seed=seed, fanout=fanout, users=users
    )
    started = time.perf_counter()
    chosen = IdleStrategy if strategy == IdleStrategy.name else strategy
    result = run_scenario(chosen, scenario, keep_trace=False)
    seconds = time.perf_counter() - started
    staleness = result.value_staleness["samples"]
    return {
        "strategy": result.strategy,
        "seconds": seconds,
        "events": result.trace_lines,
        "delivered": result.cost.delivered,
        "bytes": result.cost.bytes,
        "virtual_seconds": result.end,
        "passed": result.passed,
        "error_max": result.error["all"].max,
        "error_mean": result.error["all"].mean,
        "stale_p99": staleness.p99,
    }


def _child(strategy: str, args: argparse.Namespace, limit: float | None) -> dict[str, Any]:
    """Measure in a child process; ``{"over": True, "seconds": limit}`` if stopped."""
    code = (
        "import json, sys\n"
        "from countbench.bench.sim.speed import measure\n"
        "print(json.dumps(measure(*json.loads(sys.argv[1]))))\n"
    )
    payload = json.dumps(
        [strategy, args.nodes, args.operations, args.faults, args.seed, args.fanout, args.users]
    )
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, payload],
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"strategy": strategy, "over": True, "seconds": time.perf_counter() - started}
    if done.returncode != 0:
        lines = (done.stderr.strip() or "no output").splitlines()
        raise SimUsageError(f"{strategy}: the measuring process failed: {lines[-1]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SimUsageError(message)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m countbench.bench.sim.speed",
        description="Time the fault simulator on a big scenario (issue 6: under a minute).",
    )
    parser.add_argument("--strategies", default=DEFAULT_STRATEGIES)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--faults", default="partition")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fanout",
        default="3",
        help="peers per broadcast, or 'all' for every other node (default 3)",
    )
    parser.add_argument("--limit", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--no-stop", action="store_true", help="let a run over the limit finish")
    args = parser.parse_args(argv)
    args.fanout = fanout_peers(args.fanout)
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
        if args.limit <= 0:
            raise SimUsageError(f"--limit must be positive, got {args.limit:g}")
        names = [name.strip() for name in args.strategies.split(",") if name.strip()]
        if not names:
            raise SimUsageError("--strategies names no strategy")
        for name in names:
            resolve_strategy(name)
        # Validates nodes, operations, faults and seed before any child starts.
        checked = standard_scenario(
            args.faults,
            nodes=args.nodes,
            operations=args.operations,
            seed=1,
            fanout=args.fanout,
            users=args.users,
        )
        print(
            f"simulator: {args.nodes} nodes, {args.users:,} users, {args.operations:,} "
            f"operations, faults {args.faults}, seed {args.seed}, broadcast to "
            f"{'every node' if checked.gossip is None else f'{checked.gossip} random peers'}; "
            f"limit {args.limit:g}s",
            flush=True,
        )
        over = False
        for name in [IdleStrategy.name, *names]:
            data = _child(name, args, None if args.no_stop else args.limit)
            if data.get("over"):
                over = True
                print(f"  {name}: over {args.limit:g}s (stopped after {data['seconds']:.1f}s)")
                continue
            late = data["seconds"] > args.limit
            over |= late
            stale = data["stale_p99"]
            verdict = (
                f"verdict {'PASS' if data['passed'] else 'FAIL'}"
                f" · |error| max {data['error_max']:,} mean {data['error_mean']:.2f}"
                f" · count's age p99 {'-' if stale is None else f'{stale:.2f}s'}"
            )
            print(
                f"  {name}: {data['seconds']:.2f}s{' (over the limit)' if late else ''}"
                f" · {data['events']:,} events · {data['delivered']:,} deliveries"
                f" · {data['bytes'] / 1e6:,.1f} MB · {data['virtual_seconds']:,.0f} virtual s"
                f" · {'no strategy work' if name == IdleStrategy.name else verdict}",
                flush=True,
            )
    except SimUsageError as exc:
        print(f"countbench: error: {exc}", file=sys.stderr)
        return 2
    return 1 if over else 0


if __name__ == "__main__":  # pragma: no cover - the command line
    sys.exit(main())
