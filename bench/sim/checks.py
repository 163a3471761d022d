"""Validation of scenario values: every failure is a one-line :class:`SimUsageError`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from typing import Any

from .errors import SimUsageError


def number(
    where: str, value: Any, *, low: float = 0.0, strict: bool = False, high: float = math.inf
) -> float:
    """A finite real number ``>= low`` (``> low`` when ``strict``), at most ``high``;
    bools are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SimUsageError(f"{where} must be a number, got {value!r}")
    if value < low or (strict and value == low):
        relation = ">" if strict else ">="
        raise SimUsageError(f"{where} must be {relation} {low:g}, got {value!r}")
    if value > high:
        raise SimUsageError(f"{where} must be at most {high:g}, got {value!r}")
    return float(value)


def whole(where: str, value: Any, *, low: int = 0, high: int | None = None) -> int:
    """A whole number ``>= low``, at most ``high`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimUsageError(f"{where} must be a whole number, got {value!r}")
    if value < low:
        raise SimUsageError(f"{where} must be at least {low}, got {value!r}")
    if high is not None and value > high:
        raise SimUsageError(f"{where} must be at most {high:,}, got {value:,}")
    return value


def probability(where: str, value: Any) -> float:
    p = number(where, value)
    if p > 1:
        raise SimUsageError(f"{where} must be between 0 and 1, got {value!r}")
    return p


def node(where: str, value: Any, nodes: int) -> int:
    n = whole(where, value)
    if n >= nodes:
        raise SimUsageError(f"{where} must be a node id below {nodes}, got {value!r}")
    return n


def known_keys(where: str, data: Mapping[str, Any], allowed: Set[str]) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise SimUsageError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})"
        )
