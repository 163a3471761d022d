"""Entry point of pyperf's worker processes: ``python -m countbench.bench.pyperf_worker``.

pyperf starts this module with ``--worker``, its own options and ``--countbench-plan``; it
registers the plan's benchmarks in the manager's order and pyperf runs the one its
``--worker-task`` names.
"""

from __future__ import annotations

import os
import sys

# Workers run in a process group of their own (see timing._WorkersInTheirOwnGroup): a
# Ctrl-C reaches only the manager, countbench, which stops them with SIGKILL. The resource
# tracker of multiprocessing then removes a killed worker's queue semaphores, as it should,
# but warns about each; it inherits this filter.
os.environ["PYTHONWARNINGS"] = "ignore::UserWarning:multiprocessing.resource_tracker"


def main() -> None:
    from .plan import Plan
    from .timing import Preset, make_runner, register

    runner = make_runner(Preset.QUICK)  # the manager's settings arrive as arguments
    args = runner.parse_args()
    try:
        timers = register(runner, Plan.from_json(args.countbench_plan))
    except Exception as exc:  # e.g. a server gone: one line; the manager reports the exit
        print(f"countbench worker: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    for timer in timers:
        timer.close()


if __name__ == "__main__":
    main()
