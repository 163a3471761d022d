"""A value per time step as one line of block characters, with the fault windows marked."""

from __future__ import annotations

from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"
FAULT_MARK = "▀"


def sparkline(values: list[int], faults: list[bool]) -> tuple[str, str]:
    """(bars, marks): one block character per value scaled to the largest (all lowest when
    every value is 0), and under each column ``▀`` where a fault was active, else a space."""
    top = max(values, default=0)
    bars = "".join(BLOCKS[round(v / top * (len(BLOCKS) - 1)) if top else 0] for v in values)
    marks = "".join(FAULT_MARK if f else " " for f in faults)
    return bars, marks


def colored(bars: str, faults: list[bool]) -> Text:
    """The sparkline's bars, red where a fault was active, green elsewhere."""
    line = Text()
    for bar, fault in zip(bars, faults, strict=True):
        line.append(bar, style="red" if fault else "green")
    return line
