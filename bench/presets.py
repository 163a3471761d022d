"""The timing presets' names, apart from :mod:`.timing` (which imports pyperf), so that the
command line can offer them as choices without importing the timing machinery."""

from __future__ import annotations

from enum import StrEnum


class Preset(StrEnum):
    """How hard a run times its benchmarks (each preset's pyperf settings are in
    :data:`countbench.bench.timing.PRESET_SETTINGS`)."""

    QUICK = "quick"  # countbench's default: 1 process x 5 values, 50 ms minimum per value
    CI = "ci"  # for a CI gate: 9 processes x 2 values, enough for a rerun interval
    FAST = "fast"  # pyperf's --fast: 10 processes x 2 values, pyperf's calibration
    RIGOROUS = "rigorous"  # pyperf's --rigorous: 40 processes x 3 values
    SMOKE = "smoke"  # pyperf's --debug-single-value: one process, one value; for checks
