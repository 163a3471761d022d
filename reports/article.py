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
