"""Entry point of pyperf's worker processes: ``python -m countbench.bench.pyperf_worker``.

pyperf starts this module with ``--worker``, its own options and ``--countbench-plan``.
With ``--countbench-group N`` (quick and ci presets) it times the N benchmarks from its
``--worker-task`` on (``timing.time_group``), with ``--countbench-calibrate`` (the same
presets, as countbench's workers before the groups took it) the one benchmark; else it
registers the plan's benchmarks in
the manager's order and pyperf runs the one its ``--worker-task`` names.
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
    from .timing import WORKER_PREFIX, Controls, TimedStream, make_runner, register, time_group

    runner = make_runner(Controls())  # the manager's settings arrive as arguments
    args = runner.parse_args()
    timers: list[TimedStream] = []
    try:
        plan = Plan.from_json(args.countbench_plan)
        group = args.countbench_group or (1 if args.countbench_calibrate else 0)
        if group and args.worker and args.worker_task is not None:
            time_group(runner, plan, args.worker_task, group)
        else:
            timers = register(runner, plan)
    except Exception as exc:
        # E.g. a server gone. One line on stderr, which the manager has sent to a file: it
        # reads the reason there and reports it in its own line (timing.time_plan).
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{WORKER_PREFIX}{reason}", file=sys.stderr)
        raise SystemExit(1) from None
    for timer in timers:
        timer.close()


if __name__ == "__main__":
    main()
