"""Numbers as the tables, exports and plots show them, and the growth models ``scale`` fits
and plots draw: one place for each."""

from __future__ import annotations

import math
from collections.abc import Callable


def short(value: float, figures: int = 3) -> str:
    """7443092 -> '7.44M', 821302 -> '821K', 1001155 -> '1.00M': three significant figures
    (or ``figures``)."""
    least = 1 - 0.5 * 10 ** (1 - figures)  # what rounds to 1.00 of a unit or more
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K"), (1.0, "")):
        if abs(value) >= factor * least:
            return _figures(value / factor, figures) + suffix
    return _figures(value, figures)


def _figures(value: float, figures: int) -> str:
    """``value`` to ``figures`` significant figures, never in exponent form."""
    text = f"{value:#.{figures}g}"
    if "e" not in text:
        return text.rstrip(".")
    digits = len(str(int(abs(value))))  # more digits than figures: round the last ones
    return f"{round(value, figures - digits):.0f}"


def duration(microseconds: float) -> str:
    """284.7 -> '285µs', 1248.3 -> '1.25ms', 1021000 -> '1.02s': three figures."""
    for factor, unit in ((1e6, "s"), (1e3, "ms")):
        if microseconds >= factor * (1 - 0.5e-2):
            return _figures(microseconds / factor, 3) + unit
    return _figures(microseconds, 3) + "µs"


def spread_text(value: float, low: float, high: float) -> str:
    """1.75M in 1.36M-1.93M -> '±22%': how far the interval reaches from ``value``, at most,
    as a share of it."""
    reach = max(value - low, high - value, 0.0)
    return f"±{reach / value:.0%}" if value > 0 else "±?"


def short_number(value: float) -> str:
    """100000000 -> '100M', 5000 -> '5K'."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def tick(value: float) -> str:
    """An axis label: like :func:`short` without trailing zeros ('4M', '1.5M', '500K')."""
    text = short(value)
    number = text.rstrip("GMK")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number + text[len(text.rstrip("GMK")) :]


def p_text(value: float | None) -> str:
    """A p-value in a table: '0.031', '2.0e-04', or '-' when there is none."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


#: The growth models ``countbench scale`` fits, simplest first: y = a + b * f(n).
GROWTH: dict[str, Callable[[float], float]] = {
    "constant": lambda n: 0.0,
    "log n": math.log,
    "linear": lambda n: n,
    "n log n": lambda n: n * math.log(n),
    "quadratic": lambda n: n * n,
}
GROWTH_SHAPES = {
    "constant": "a",
    "log n": "a + b·ln n",
    "linear": "a + b·n",
    "n log n": "a + b·n ln n",
    "quadratic": "a + b·n²",
}
