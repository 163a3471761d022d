"""A/B comparisons judged on paired ratios (``countbench ab``, ``countbench gate-check``).

An A/B run times both sides in rounds; each round times A and B once each, one worker
process apiece, back to back in a random order. A round gives one **paired ratio** per
stream, ``B's ops/s / A's ops/s``: whatever the machine did during that round (another
job, a frequency change, a noisy neighbour) touched both sides, so it cancels in the
ratio, where it would not cancel between two runs made at different times (Laaber,
Scheuner and Leitner, EMSE 2019: randomized multiple interleaved trials).

Per stream, over the rounds' log ratios:

* the change is their mean, shown as a percentage (the geometric mean of the ratios);
  its 95 % confidence interval is Student's, on the logs;
* the significance is a **paired sign-flip permutation test** on the log ratios (under
  "A and B are the same", each round's ratio is as likely r as 1/r): exact, over all
  2^n sign patterns, up to :data:`EXACT_ROUNDS` rounds; beyond, :data:`PERMUTATIONS`
  seeded random patterns, the observed one counted among them (so p > 0). It assumes no
  distribution; with n rounds p cannot fall below
  2 / 2^n: 0.0625 for 5 rounds, so never below ``ALPHA``; 0.031 for 6, 0.002 for 10;
* B **regresses** when it is significantly slower (p < ``ALPHA``) by more than the
  threshold.

Fewer than :data:`MIN_ROUNDS` rounds: not enough independent samples to judge.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .samples import t95

ALPHA = 0.05
MIN_ROUNDS = 6  # the fewest whose smallest p (2 / 2**6) is below ALPHA
EXACT_ROUNDS = 16
PERMUTATIONS = 20_000
SEED = 20191  # fixed: the same rounds always give the same p


def sign_flip_p(differences: Sequence[float]) -> float:
    """Two-sided p of the paired sign-flip permutation test of mean 0."""
    n = len(differences)
    if n == 0:
        return 1.0
    observed = abs(math.fsum(differences))
    tolerance = 1e-12 * max(1.0, observed)
    patterns: Iterable[Sequence[int]]
    exact = n <= EXACT_ROUNDS
    if exact:
        patterns = itertools.product((1, -1), repeat=n)
    else:
        rng = random.Random(SEED)
        patterns = ([rng.choice((1, -1)) for _ in range(n)] for _ in range(PERMUTATIONS))
    extreme = total = 0
    for signs in patterns:
        total += 1
        flipped = abs(math.fsum(s * d for s, d in zip(signs, differences, strict=True)))
        extreme += flipped >= observed - tolerance
    if not exact:  # the observed signs count as one of the draws: p is never 0
        extreme, total = extreme + 1, total + 1
    return min(1.0, extreme / total)


@dataclass(frozen=True)
class PairedChange:
    """One stream of an A/B run: B against A over the rounds."""

    stream: str
    a_ops_per_sec: float  # mean over the rounds
    b_ops_per_sec: float
    ratios: tuple[float, ...]  # B / A, one per round
    change_pct: float  # the geometric mean ratio - 1, in percent: negative is slower
    ci95_pct: tuple[float, float] | None
    p_value: float | None
    significant: bool
    regression: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "a_ops_per_sec": self.a_ops_per_sec,
            "b_ops_per_sec": self.b_ops_per_sec,
            "ratios": list(self.ratios),
            "change_pct": self.change_pct,
            "ci95_pct": list(self.ci95_pct) if self.ci95_pct else None,
            "p_value": self.p_value,
            "significant": self.significant,
            "regression": self.regression,
            "note": self.note,
        }


def paired_change(
    stream: str, a: Sequence[float], b: Sequence[float], fail_above: float
) -> PairedChange:
    """Judge B against A from per-round ops/s (``a[i]`` and ``b[i]`` timed in round i)."""
    if len(a) != len(b):
        raise ValueError("A and B need one figure each per round")
    logs = [math.log(y / x) for x, y in zip(a, b, strict=True) if x > 0 and y > 0]
    ratios = tuple(math.exp(v) for v in logs)
    mean_a = statistics.fmean(a) if a else 0.0
    mean_b = statistics.fmean(b) if b else 0.0
    if not logs:
        return PairedChange(stream, mean_a, mean_b, (), 0.0, None, None, False, False, "no rounds")
    centre = statistics.fmean(logs)
    change = (math.exp(centre) - 1) * 100
    if len(logs) < MIN_ROUNDS:
        note = (
            f"not enough independent samples to judge: {len(logs)} rounds, at least "
            f"{MIN_ROUNDS} are needed"
        )
        return PairedChange(stream, mean_a, mean_b, ratios, change, None, None, False, False, note)
    half = t95(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    ci = ((math.exp(centre - half) - 1) * 100, (math.exp(centre + half) - 1) * 100)
    p = sign_flip_p(logs)
    significant = p < ALPHA
    regression = significant and -change / 100 > fail_above
    return PairedChange(stream, mean_a, mean_b, ratios, change, ci, p, significant, regression)
