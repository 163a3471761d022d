"""The reference article's comparison table, shown dimmed beside the measured figures.

These are the article's own numbers and labels, quoted as its claims (ops/s for Go on
unspecified hardware); countbench never prints them as its own measurements.
"""

from __future__ import annotations

from typing import NamedTuple


class ArticleRow(NamedTuple):
    reads_per_sec: float
    writes_per_sec: float
    consistency: str
    complexity: str


ARTICLE_TABLE: dict[str, ArticleRow] = {
    "Local atomic": ArticleRow(100e6, 50e6, "Strong", "Low"),
    "Central service": ArticleRow(10e3, 5e3, "Strong", "Medium"),
    "Aggregate on demand": ArticleRow(1e3, 50e6, "Eventual", "Medium"),
    "Redis": ArticleRow(100e3, 50e3, "Strong", "Low"),
    "CRDT (PN-Counter)": ArticleRow(10e6, 5e6, "Eventual", "High"),
}


def short_number(value: float) -> str:
    """100000000 -> '100M', 5000 -> '5K'."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def short(value: float) -> str:
    """7443092 -> '7.44M', 821302 -> '821K', 1001155 -> '1.00M': three significant figures."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K"), (1.0, "")):
        if abs(value) >= factor * 0.9995:  # what rounds to 1.00 of this unit or more
            return f"{value / factor:#.3g}".rstrip(".") + suffix
    return f"{value:#.3g}".rstrip(".")


def p_text(value: float | None) -> str:
    """A p-value in a table: '0.031', '2.0e-04', or '-' when there is none."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"
