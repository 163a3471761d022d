"""countbench's ``redis-incr`` against ``redis-benchmark``'s INCR, on one Redis, in one run.

    python -m countbench.bench.redis_benchmark_ratio [--clients 2] [--pipeline 1] [--repeat 1]

Starts a Redis (as countbench does), measures INCR with ``redis-benchmark -c C -P P`` and
countbench's ``redis-incr`` writes (INCR/DECR, one command each) with ``--workers C
--pipeline P --mode process`` (one process per client, like redis-benchmark's
connections; ``--mode`` to change) against it, prints both and the ratio (target:
countbench >= 0.5 x redis-benchmark) and exits 1 below the target. With ``--repeat N``
it measures N pairs, one after the other, prints each pair's ratio and judges the median
ratio (on a shared machine the load changes between runs; a pair's two measurements are
seconds apart). Without redis-benchmark on PATH it says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .servers.redis_server import RedisServer

TARGET = 0.5


def redis_benchmark_incr(
    binary: str, url: str, clients: int, pipeline: int, requests: int
) -> float:
    parts = urlsplit(url)
    result = subprocess.run(
        [
            binary,
            "-h",
            parts.hostname or "127.0.0.1",
            "-p",
            str(parts.port),
            "-c",
            str(clients),
            "-P",
            str(pipeline),
            "-n",
            str(requests),
            "-t",
            "incr",
            "--csv",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    rows = [row for row in csv.reader(io.StringIO(result.stdout)) if row]
    for row in rows:
        if row[0].upper() == "INCR":
            return float(row[1])
    raise RuntimeError(f"no INCR line in redis-benchmark output: {result.stdout!r}")


def countbench_incr(url: str, clients: int, pipeline: int, mode: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "incr.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "countbench.bench.cli",
                "run",
                "--strategy",
                "redis-incr",
                "--mode",
                mode,
                "--workers",
                str(clients),
                "--pipeline",
                str(pipeline),
                "--redis-url",
                url,
                "--quiet",
                "--json",
                str(report),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )
        data = json.loads(report.read_text())
    return float(data["results"][0]["operations"]["writes"]["ops_per_sec"])


def setup_note(mode: str, clients: int, cpus: int) -> str:
    """What each side runs on, printed with the figures: the two are not the same shape
    (redis-benchmark is one C event loop for all its connections)."""
    ours = {
        "process": f"{clients} worker process(es), one connection each",
        "thread": f"{clients} thread(s) in one Python process (one GIL), one connection each",
        "asyncio": f"{clients} asyncio task(s) on one Python event loop, one connection each",
    }[mode]
    return (
        f"setup                : redis-benchmark is one C process, one event loop for its "
        f"{clients} connection(s); countbench runs {ours}; both share {cpus} CPU(s) with "
        "the Redis server"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--mode", default="process", choices=["thread", "process", "asyncio"])
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (median judged)")
    args = parser.parse_args()
    binary = shutil.which("redis-benchmark")
    if binary is None:
        print(
            "redis-benchmark is not on PATH: the redis-incr ratio was not measured "
            "(Debian: apt-get install redis-tools)"
        )
        return 0
    ratios = []
    print(setup_note(args.mode, args.clients, os.cpu_count() or 1))
    with RedisServer() as server:
        for pair in range(1, max(1, args.repeat) + 1):
            reference = redis_benchmark_incr(
                binary, server.url, args.clients, args.pipeline, args.requests
            )
            ours = countbench_incr(server.url, args.clients, args.pipeline, args.mode)
            ratios.append(ours / reference)
            if args.repeat > 1:
                print(f"pair {pair}:")
            print(
                f"redis-benchmark INCR : {reference:,.0f} ops/s "
                f"(-c {args.clients} -P {args.pipeline})"
            )
            print(
                f"countbench redis-incr: {ours:,.0f} ops/s (--workers {args.clients} "
                f"--pipeline {args.pipeline} --mode {args.mode})"
            )
            print(f"ratio                : {ratios[-1]:.2f} (target >= {TARGET})")
    ratio = statistics.median(ratios)
    if len(ratios) > 1:
        print(
            f"median ratio         : {ratio:.2f} of {len(ratios)} pairs "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target >= {TARGET})"
        )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
