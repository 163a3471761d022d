"""Numbers as the tables, exports and plots show them, and the growth models ``scale`` fits
and plots draw: one place for each."""

from __future__ import annotations

import math
from collections.abc import Callable


def short(value: float) -> str:
    """7443092 -> '7.44M', 821302 -> '821K', 1001155 -> '1.00M': three significant figures."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K"), (1.0, "")):
        if abs(value) >= factor * 0.9995:  # what rounds to 1.00 of this unit or more
            return f"{value / factor:#.3g}".rstrip(".") + suffix
    return f"{value:#.3g}".rstrip(".")


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
