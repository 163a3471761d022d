"""The names of the faults, read by ``--help`` (so this module imports nothing heavy): the
simulator's presets (:data:`~countbench.bench.sim.presets.PRESETS` has one per name) and
the real faults done to a server (:mod:`~countbench.bench.faults.runner`)."""

from __future__ import annotations

SIMULATED = (
    "partition",
    "isolate",
    "oneway",
    "duplicate",
    "loss",
    "reorder",
    "latency",
    "crash",
    "crash-persist",
)
REAL = ("pause", "kill")
