"""Standard scenarios behind the ``--faults`` shortcuts of ``countbench chaos``.

Fault windows are placed at fixed fractions of the client phase (whose length is computed
from the scenario's own schedule, so it is exact), leaving healthy stretches at the start
and the end of the run to compare with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .clients import client_schedule
from .clock import Seeds
from .errors import SimUsageError
from .faults import CrashFault, DuplicateFault, Fault, LatencyFault, LossFault, PartitionFault
from .scenario import Scenario


def _at(span: float, fraction: float) -> float:
    return round(span * fraction, 3)


def _partition(sc: Scenario, span: float) -> list[Fault]:
    return [
        PartitionFault(start=_at(span, 0.2), end=_at(span, 0.4), layout="halves"),
        PartitionFault(
            start=_at(span, 0.55), end=_at(span, 0.7), layout="isolate", node=sc.nodes - 1
        ),
    ]


PRESETS: dict[str, Callable[[Scenario, float], list[Fault]]] = {
    "partition": _partition,
    "isolate": lambda sc, s: [
        PartitionFault(start=_at(s, 0.2), end=_at(s, 0.6), layout="isolate", node=0)
    ],
    "oneway": lambda sc, s: [
        PartitionFault(start=_at(s, 0.2), end=_at(s, 0.5), layout="halves", one_way=True)
    ],
    "duplicate": lambda sc, s: [
        DuplicateFault(start=_at(s, 0.1), end=_at(s, 0.9), probability=0.3)
    ],
    "loss": lambda sc, s: [LossFault(start=_at(s, 0.1), end=_at(s, 0.9), probability=0.3)],
    "reorder": lambda sc, s: [
        LatencyFault(start=_at(s, 0.1), end=_at(s, 0.9), jitter=3 * sc.sync_interval)
    ],
    "latency": lambda sc, s: [
        LatencyFault(start=_at(s, 0.1), end=_at(s, 0.9), latency=0.5, jitter=0.5)
    ],
    "crash": lambda sc, s: [CrashFault(start=_at(s, 0.3), end=_at(s, 0.5), node=1 % sc.nodes)],
    "crash-persist": lambda sc, s: [
        CrashFault(start=_at(s, 0.3), end=_at(s, 0.5), node=1 % sc.nodes, persist=True)
    ],
}


def fault_names(faults: str) -> list[str]:
    """``"partition,loss"`` -> the names, checked; ``"none"`` or ``""`` -> no fault."""
    names = [part.strip() for part in faults.split(",") if part.strip()]
    if names == ["none"]:
        return []
    for name in names:
        if name not in PRESETS:
            known = ", ".join([*PRESETS, "none"])
            raise SimUsageError(f"unknown fault {name!r} (known: {known})")
    return list(dict.fromkeys(names))


def client_span(scenario: Scenario) -> float:
    """Virtual time of the scenario's last client operation."""
    seeds = Seeds(scenario.seed)
    return client_schedule(scenario, seeds.child("workload"), seeds.child("clients")).end


def standard_scenario(faults: str, **fields: Any) -> Scenario:
    """A :class:`Scenario` with ``fields`` and the faults named in ``faults``."""
    names = fault_names(faults)
    try:
        base = Scenario(**fields).validate()
    except TypeError as exc:
        raise SimUsageError(f"bad scenario field: {exc}") from None
    return with_standard_faults(base, names)


def with_standard_faults(base: Scenario, names: list[str]) -> Scenario:
    """``base`` with its faults replaced by the presets ``names`` (built for its span)."""
    span = client_span(base) if names else 0.0
    chosen: list[Fault] = []
    for name in names:
        chosen.extend(PRESETS[name](base, span))
    return base.with_overrides(faults=tuple(chosen))
