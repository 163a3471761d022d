"""How much the harness costs: the ``local`` strategy's writes through countbench against a
bare loop of the same calls, both timed by pyperf in one run.

    python -m countbench.bench.overhead REPORT.json [pyperf options]

REPORT.json is a countbench report holding a ``local`` result (thread mode, one worker);
this times a bare loop of the same login/logout calls on the same counter class, prints
both and the ratio countbench / bare (target: >= 0.8), and exits 1 below the target.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pyperf

from ..strategies.local import AtomicCounter
from .workload import WorkloadSpec, build

TARGET = 0.8


def bare_writes(loops: int, users: list[str], logins: list[bool]) -> float:
    """The write operation with nothing around it: bound methods in a plain for loop."""
    node = AtomicCounter()
    login, logout = node.login, node.logout
    start = time.perf_counter()
    for _ in range(loops):
        for user, is_login in zip(users, logins, strict=True):
            if is_login:
                login(user, 0.0)
            else:
                logout(user, 0.0)
    return time.perf_counter() - start


def main() -> None:
    runner = pyperf.Runner(
        program_args=("-m", "countbench.bench.overhead"),
        add_cmdline_args=lambda cmd, args: cmd.append(str(args.report)),
    )
    runner.argparser.add_argument("report", type=Path)
    args = runner.parse_args()
    report = json.loads(args.report.read_text())
    spec = WorkloadSpec().with_overrides({**report["workload"], "workers": 1})
    stream = build(spec).writes[0]
    users = [u for u, k in zip(stream.users, stream.kinds, strict=True) if u]
    logins = [k == 0 for u, k in zip(stream.users, stream.kinds, strict=True) if u]
    bench = runner.bench_time_func(
        "bare-local-writes", bare_writes, users, logins, inner_loops=len(users)
    )
    if bench is None or args.worker:  # a pyperf worker process: pyperf has the result
        return
    local = next(r for r in report["results"] if r["strategy"]["name"] == "local")
    tool = local["operations"]["writes"]["ops_per_sec"]
    bare = 1.0 / bench.mean()
    ratio = tool / bare
    print(f"bare loop : {bare:,.0f} writes/s")
    print(f"countbench: {tool:,.0f} writes/s (local, {local['mode']}, {local['workers']} worker)")
    print(f"ratio     : {ratio:.2f} (target >= {TARGET})")
    if ratio < TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
