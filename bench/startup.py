"""How fast the command line starts: the CPU seconds of ``countbench --help`` and
``countbench list``, each run ``--repeat`` times in a fresh process (the median and the
largest). Exits 1 when a median is above ``--target`` seconds. Run by ``nox -s bench``:

    python -m countbench.bench.startup --repeat 15 --target 0.25
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence

COMMANDS = (("--help",), ("list",))


def cpu_seconds(args: Sequence[str]) -> float:
    """User plus system CPU seconds of one run of ``python args`` (output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--target", type=float, default=0.25)
    args = parser.parse_args(argv)
    slow = []
    for command in COMMANDS:
        run = ["-m", "countbench.bench.cli", *command]
        seconds = [cpu_seconds(run) for _ in range(max(1, args.repeat))]
        median = statistics.median(seconds)
        print(
            f"countbench {' '.join(command)}: CPU median {median:.3f} s, max "
            f"{max(seconds):.3f} s over {len(seconds)} runs (target {args.target:g} s)"
        )
        if median > args.target:
            slow.append(" ".join(command))
    python = statistics.median(cpu_seconds(["-c", "pass"]) for _ in range(5))
    print(f"python -c pass: CPU median {python:.3f} s")
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
