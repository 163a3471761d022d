"""A deterministic fault simulator for replicated counting strategies.

The replicas of any :class:`~countbench.strategies.base.ReplicatedStrategy` run unchanged
on a virtual clock, with clients logging in, heartbeating, logging out (or vanishing) and
reading, and a network that delays, reorders, duplicates, loses and partitions messages
while nodes crash and restart. The same scenario (seed included) always gives the same
trace, byte for byte (``SimResult.trace_hash``). Metric definitions: :mod:`.metrics`.

    from countbench.bench.sim import Scenario, PartitionFault, run_scenario
    result = run_scenario("pncounter", Scenario(faults=(PartitionFault(start=60, end=120),)))
"""

from __future__ import annotations

from .errors import SimUsageError
from .faults import (
    FAULT_TYPES,
    CrashFault,
    DuplicateFault,
    Fault,
    LatencyFault,
    LossFault,
    PartitionFault,
)
from .presets import PRESETS, client_span, fault_names, standard_scenario, with_standard_faults
from .result import SimResult
from .runner import replicated_strategies, resolve_strategy, run_scenario
from .scenario import Scenario

__all__ = [
    "FAULT_TYPES",
    "PRESETS",
    "CrashFault",
    "DuplicateFault",
    "Fault",
    "LatencyFault",
    "LossFault",
    "PartitionFault",
    "Scenario",
    "SimResult",
    "SimUsageError",
    "client_span",
    "fault_names",
    "replicated_strategies",
    "resolve_strategy",
    "run_scenario",
    "standard_scenario",
    "with_standard_faults",
]
