"""Rich tables of ``countbench ab`` (B against A, paired by round) and of
``countbench gate-check`` (what each gate detects on this machine)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from .numbers import p_text, short
from .paired import ALPHA, PairedChange


def ab_table(changes: Sequence[PairedChange], a: str, b: str, fail_above: float) -> Table:
    """One row per stream: both sides' mean ops/s, B's change (geometric mean of the
    rounds' ratios) with its 95% interval, the paired test's p, the verdict."""
    rounds = max((len(c.ratios) for c in changes), default=0)
    table = Table(
        title=f"countbench ab · A = {a} · B = {b} · {rounds} interleaved rounds · B fails "
        f"when slower by more than {fail_above:.1%} with p < {ALPHA} (paired sign-flip test)",
        title_justify="left",
    )
    table.add_column("Stream", no_wrap=True, min_width=6)
    for column in ("A ops/s", "B ops/s", "B vs A", "95% CI", "p"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for change in changes:
        interval = (
            f"{change.ci95_pct[0]:+.1f}..{change.ci95_pct[1]:+.1f}%" if change.ci95_pct else "-"
        )
        style = ("red" if change.change_pct < 0 else "green") if change.significant else ""
        verdict = (
            Text("REGRESSION", style="bold red")
            if change.regression
            else Text("not judged" if change.p_value is None else "ok")
        )
        table.add_row(
            change.stream,
            short(change.a_ops_per_sec),
            short(change.b_ops_per_sec),
            Text(f"{change.change_pct:+.1f}%", style=style),
            interval,
            p_text(change.p_value),
            verdict,
        )
    return table


def _rate(found: Sequence[int]) -> str:
    hits, total = found
    return f"{hits}/{total}" if total else "-"


def gate_check_table(check: Mapping[str, Any], slowdowns: Sequence[float]) -> Table:
    """Per gate: the false alarms among identical pairs, and the slowed pairs detected
    at each slowdown."""
    table = Table(title="countbench gate-check · what each gate sees here", title_justify="left")
    table.add_column("Gate")
    table.add_column("false alarms", justify="right")
    for slowdown in slowdowns:
        table.add_column(f"detects {slowdown:.0%}", justify="right")
    for name, label in (("ab", "A/B (countbench ab)"), ("stored", "stored baseline (diff)")):
        gate = check[name]
        table.add_row(
            label,
            _rate(gate["false_alarms"]),
            *(_rate(gate["detected"].get(f"{s:g}", [0, 0])) for s in slowdowns),
        )
    return table
