"""Two reports compared: the gate CI runs between a base branch and a change.

:func:`diff_reports` pairs every (strategy, operation) present in both reports and gives,
per pair, the base and new ops/s (the reports' own ``ops_per_sec``, 1 / mean time per
operation), the change in percent, a p-value, whether the change is significant, and
whether it is a *regression*: ops/s fell by more than ``fail_above`` (a fraction: 0.10 is
10 %) **and** the fall is significant. It also lists the strategies present in one report
only, warns (never refuses) when the machine, the Python, the mode, the preset or the
workload differ, and reports *consistency regressions*: a strategy whose final count was
exact (``max_abs_error`` 0) and no longer is, or whose nodes agreed and no longer do. A
regression of either kind makes :attr:`DiffResult.failed` true.

Unit of analysis: the worker process (see :mod:`.samples`). A figure is the median of its
processes' ops/s, and the significance test compares the two reports' processes, not
pyperf's values, which within one process are not independent (treating them as if they
were made the gate fail on identical code). With fewer than ``MIN_PROCESSES`` processes on
either side (the quick preset runs one) nothing is called significant, and the pair's
note says there are not enough independent samples to judge: gate with ``--preset ci``.

Significance test: the two-sided **Mann-Whitney U test** (Wilcoxon rank-sum) on the
processes' ops/s, at ``ALPHA`` = 0.05. Why:

* benchmark times are skewed and have outliers (a process hit by a scheduler hiccup); a
  rank test makes no normality assumption, and one outlier moves one rank, not the mean
  and variance a t-test rests on. It is the test Google Benchmark's ``compare.py`` uses.
* for small samples its null distribution is exact and cheap: with no ties and at most
  ``EXACT_LIMIT`` samples in all, p comes from the exact distribution of U (counted with
  the Mann-Whitney recurrence, integers, no approximation). With ties or more samples, the
  normal approximation with tie correction and a continuity correction is used.

A rank test on n and m samples cannot give a two-sided p below 2 / C(n+m, n): 0.029 for 4
and 4 processes, 4.1e-05 for the CI preset's 9 and 9.

Two ``--param`` scans pair point by point: ``pncounter @ users=1000`` with its namesake.
Two reports of different workloads measure different things: the gate then calls nothing
a regression (:attr:`DiffResult.unjudged` says why) unless ``allow_workload_change``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .load import ReportUsageError, named_results, point_label, scan_points
from .samples import MIN_PROCESSES, estimate, not_enough
from .verdicts import FAIL, simulated_status, verification_status

ALPHA = 0.05
EXACT_LIMIT = 40  # samples on both sides together, for the exact distribution of U
#: A 1-minute load average this much higher in one report than the other: another job
#: (one more busy CPU) shared the machine with one of the two runs.
LOAD_GAP = 1.0

MACHINE_KEYS = (
    "cpu_model",
    "cpu_count_logical",
    "cpu_count_physical",
    "memory_total_bytes",
    "machine",
    "platform",
)
PYTHON_KEYS = ("implementation", "version", "gil_enabled")


# --- the test -----------------------------------------------------------------------------


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) of ``values`` in input order, and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        if end > start:
            ties.append(end - start + 1)
        start = end + 1
    return ranks, ties


def u_distribution(n: int, m: int) -> list[int]:
    """How many of the C(n+m, n) orderings of two samples of sizes ``n`` and ``m`` (no
    ties) give U = 0, 1, ..., n*m. Mann and Whitney's recurrence: the largest value is
    either the first sample's (adding m to U) or the second's."""
    # row[j] is the distribution for sizes (i, j); start with i = 0: U is always 0.
    row = [[1] for _ in range(m + 1)]
    for i in range(1, n + 1):
        new = [[1]]  # sizes (i, 0)
        for j in range(1, m + 1):
            left, up = new[j - 1], row[j]  # sizes (i, j-1) and (i-1, j)
            counts = [0] * (i * j + 1)
            for u, c in enumerate(left):
                counts[u] += c
            for u, c in enumerate(up):
                counts[u + j] += c
            new.append(counts)
        row = new
    return row[m]


def min_p_value(n: int, m: int) -> float:
    """The smallest two-sided p the exact test can give on samples of sizes n and m."""
    return min(1.0, 2 / math.comb(n + m, n))


# MIN_PROCESSES a side is enough for the test to reach ALPHA at all (else a gate with
# that many processes could never fail: the floor of p is 2 / C(2n, n)).
assert min_p_value(MIN_PROCESSES, MIN_PROCESSES) < ALPHA


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(U of ``x``, two-sided p) of the Mann-Whitney U test; U counts the pairs with the
    ``x`` value larger (a tie counts one half). Both samples must be non-empty."""
    n, m = len(x), len(y)
    if not n or not m:
        raise ValueError("both samples need at least one value")
    ranks, ties = _ranks([*x, *y])
    u = sum(ranks[:n]) - n * (n + 1) / 2
    if not ties and n + m <= EXACT_LIMIT:
        counts = u_distribution(n, m)
        low = round(min(u, n * m - u))
        p = 2 * sum(counts[: low + 1]) / math.comb(n + m, n)
        return u, min(1.0, p)
    total = n + m
    tie_term = sum(t**3 - t for t in ties) / (total * (total - 1))
    variance = n * m / 12 * ((total + 1) - tie_term)
    if variance <= 0:  # every value equal
        return u, 1.0
    z = max(0.0, abs(u - n * m / 2) - 0.5) / math.sqrt(variance)
    return u, min(1.0, math.erfc(z / math.sqrt(2)))


# --- the comparison -----------------------------------------------------------------------


@dataclass(frozen=True)
class PairDiff:
    """One (strategy, operation) present in both reports."""

    strategy: str
    operation: str
    base_ops_per_sec: float
    new_ops_per_sec: float
    change_pct: float  # (new - base) / base x 100: negative is slower
    p_value: float | None  # None: too few processes to test
    significant: bool
    regression: bool
    n_base: int  # worker processes: the independent samples
    n_new: int
    note: str | None = None  # why a change cannot be called significant, when it cannot


@dataclass(frozen=True)
class ConsistencyChange:
    """A strategy whose verification changed; ``failure`` when it got worse in a way the
    gate refuses (exact -> not exact, nodes agreeing -> not, or correct against its
    specification -> not, in the verification pass or on the simulator)."""

    strategy: str
    base_max_abs_error: int
    new_max_abs_error: int
    base_nodes_agree: bool
    new_nodes_agree: bool
    failure: bool
    #: (check, base status, new status) for each check whose status against the
    #: specification changed (see :mod:`.verdicts`)
    spec: tuple[tuple[str, str, str], ...] = ()

    def describe(self) -> str:
        text = f"{self.strategy}: max error {self.base_max_abs_error} -> {self.new_max_abs_error}"
        if self.base_nodes_agree != self.new_nodes_agree:
            agree = {True: "agree", False: "disagree"}
            text += f", nodes {agree[self.base_nodes_agree]} -> {agree[self.new_nodes_agree]}"
        for check, before, after in self.spec:
            text += f", {check} correct vs its spec {before} -> {after}"
        return text


@dataclass(frozen=True)
class DiffResult:
    """Everything :func:`diff_reports` found; :attr:`failed` is the gate's verdict."""

    pairs: list[PairDiff]
    only_in_base: list[str]
    only_in_new: list[str]
    consistency: list[ConsistencyChange]
    warnings: list[str]
    fail_above: float
    alpha: float = ALPHA
    notes: list[str] = field(default_factory=list)
    #: Why no slowdown may be called a regression (the workloads differ), or None.
    unjudged: str | None = None

    @property
    def regressions(self) -> list[PairDiff]:
        return [] if self.unjudged else [p for p in self.pairs if p.regression]

    @property
    def consistency_failures(self) -> list[ConsistencyChange]:
        if not self.unjudged:
            return [c for c in self.consistency if c.failure]
        # The workloads differ: how far a count is from the users online depends on the
        # workload (a scenario where users vanish), but a check that now contradicts the
        # strategy's own specification is a bug on any workload.
        return [c for c in self.consistency if any(a == FAIL and b != FAIL for _, b, a in c.spec)]

    @property
    def failed(self) -> bool:
        return bool(self.regressions or self.consistency_failures)

    @property
    def untested(self) -> bool:
        """Some operation is in both reports and none could be tested: the reports have
        too few independent samples for a verdict on speed."""
        return bool(self.pairs) and all(p.p_value is None for p in self.pairs)


def parse_share(text: str, option: str, maximum: float, below: bool = False) -> float:
    """'10%' -> 0.1, '0.1' -> 0.1, '2.5%' -> 0.025: a share from 0 to ``maximum`` (below it
    with ``below``). Anything else: :class:`ReportUsageError` naming ``option`` (one line)."""
    raw = text.strip()
    limit = f"below {maximum:.0%}" if below else f"at most {maximum:.0%}"
    problem = (
        f"{option} {text!r}: give a percentage like '10%' or a fraction like 0.1, "
        f"at least 0 and {limit}"
    )
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ReportUsageError(problem) from None
    within = value < maximum if below else value <= maximum
    if not (math.isfinite(value) and value >= 0 and within):
        raise ReportUsageError(problem)
    return value


def parse_threshold(text: str, option: str = "--fail-above") -> float:
    """A fall of ops/s as a fraction in [0, 1) (see :func:`parse_share`)."""
    return parse_share(text, option, 1.0, below=True)


def pair_diff(
    strategy: str,
    operation: str,
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    fail_above: float,
) -> PairDiff:
    first, second = estimate(base), estimate(new)
    before, after = first.ops_per_sec, second.ops_per_sec
    change = (after - before) / before * 100 if before else 0.0
    x, y = first.process_ops_per_sec, second.process_ops_per_sec
    n, m = len(x), len(y)
    p: float | None = None
    note = None
    if not (math.isfinite(before) and math.isfinite(after)):
        note = "a timing that is no positive number (a damaged report): not judged"
        change = math.nan
    elif n < MIN_PROCESSES or m < MIN_PROCESSES:
        note = not_enough(min(n, m))
    else:
        p = mann_whitney_u(x, y)[1]
    significant = p is not None and p < ALPHA
    regression = significant and -change / 100 > fail_above
    return PairDiff(
        strategy, operation, before, after, change, p, significant, regression, n, m, note
    )


def _differences(base: Mapping[str, Any], new: Mapping[str, Any], keys: Sequence[str]) -> str:
    return "; ".join(
        f"{key} {base.get(key)!r} -> {new.get(key)!r}"
        for key in keys
        if base.get(key) != new.get(key)
    )


def _runs_metadata(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """pyperf's metadata of every worker process of a report (the suite's, then the
    run's own)."""

    def mapping(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    found = []
    for result in report["results"]:
        for operation in result["operations"].values():
            suite = mapping(operation.get("pyperf"))
            common = mapping(suite.get("metadata"))
            for benchmark in map(mapping, suite.get("benchmarks") or []):
                shared = {**common, **mapping(benchmark.get("metadata"))}
                for run in map(mapping, benchmark.get("runs") or []):
                    found.append({**shared, **mapping(run.get("metadata"))})
    return found


def peak_load(report: Mapping[str, Any]) -> float | None:
    """The highest 1-minute load average pyperf recorded while the report was timed (a
    value that is no finite number is skipped)."""
    loads = [m.get("load_avg_1min") for m in _runs_metadata(report)]
    numbers = [float(x) for x in loads if isinstance(x, int | float) and not isinstance(x, bool)]
    return max((x for x in numbers if math.isfinite(x)), default=None)


def affinity(report: Mapping[str, Any]) -> str | None:
    """The CPUs the workers were pinned to (``--affinity``), where recorded."""
    timing = report.get("timing") or {}
    if timing.get("affinity"):
        return str(timing["affinity"])
    pinned = {str(m["cpu_affinity"]) for m in _runs_metadata(report) if "cpu_affinity" in m}
    return ", ".join(sorted(pinned)) or None


def versions(report: Mapping[str, Any]) -> dict[str, str]:
    """What a report measured, by name: countbench (and its commit), each strategy's
    package, each server."""
    tool = report.get("tool") or {}
    git = report.get("git") or {}
    found = {"countbench": str(tool.get("version", "?"))}
    if git.get("commit"):
        found["countbench"] += f" @ {git['commit'][:12]}" + (" (dirty)" if git.get("dirty") else "")
    for result in report["results"]:
        package = result["strategy"].get("package")
        if package and package.get("name") != "countbench":
            found[f"{result['strategy']['name']} ({package['name']})"] = str(package["version"])
    for name, facts in (report.get("services") or {}).items():
        if isinstance(facts, Mapping) and facts.get("version"):
            found[f"{name} server"] = str(facts["version"])
    return found


def workload_change(base: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """What differs between the two reports' workloads and modes, or None. Two scans of
    one parameter are compared point by point, over the values both scanned."""
    scans = base.get("scan"), new.get("scan")
    if scans[0] and scans[1] and scans[0]["parameter"] == scans[1]["parameter"]:
        news = {point_label(p, v): point for p, v, point in scan_points(new)}
        for parameter, value, point in scan_points(base):
            label = point_label(parameter, value)
            if label in news and (change := _workload_change(point, news[label])):
                return f"at {label}: {change}"
        return None
    return _workload_change(base, new)


def _workload_change(base: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    keys = sorted({*base["workload"], *new["workload"]})
    parts = [_differences(base["workload"], new["workload"], keys)]
    if base["mode"] != new["mode"]:
        parts.append(f"mode {base['mode']!r} -> {new['mode']!r}")
    return "; ".join(p for p in parts if p) or None


def _warnings(base: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    warnings = []
    machine = _differences(base["machine"], new["machine"], MACHINE_KEYS)
    if machine:
        warnings.append(f"the machines differ ({machine}): a change may come from the machine")
    python = _differences(base["python"], new["python"], PYTHON_KEYS)
    if python:
        warnings.append(f"the Pythons differ ({python}): a change may come from the interpreter")
    timing = ""
    if base.get("timing") and new.get("timing"):
        # A report without a timing method was timed by the first one (bench/timing.py).
        before, after = ({"method": 1, **report["timing"]} for report in (base, new))
        keys = sorted({*before, *after} - {"python", "preset", "affinity"})
        timing = _differences(before, after, keys)
    if base["preset"] != new["preset"] or timing:
        warnings.append(
            f"the timing differs (preset {base['preset']} -> {new['preset']}"
            + (f"; {timing}" if timing else "")
            + ")"
        )
    pinned = affinity(base), affinity(new)
    if pinned[0] != pinned[1]:
        warnings.append(
            f"the CPU affinity differs ({pinned[0] or 'any CPU'} -> {pinned[1] or 'any CPU'}): "
            "pinned workers share their CPUs with the rest of the run"
        )
    loads = peak_load(base), peak_load(new)
    if loads[0] is not None and loads[1] is not None and abs(loads[0] - loads[1]) >= LOAD_GAP:
        warnings.append(
            f"the machine was busier in one run (1-minute load up to {loads[0]:.2f} -> "
            f"{loads[1]:.2f}): another job may have shared the CPUs"
        )
    before, after = versions(base), versions(new)
    changed = [
        f"{name} {before.get(name, '-')} -> {after.get(name, '-')}"
        for name in dict.fromkeys([*before, *after])
        if name != "countbench" and before.get(name) != after.get(name)
    ]
    tool_versions = [v.split(" @ ")[0] for v in (before["countbench"], after["countbench"])]
    if tool_versions[0] != tool_versions[1]:
        changed.insert(0, f"countbench {tool_versions[0]} -> {tool_versions[1]}")
    if changed:
        warnings.append(f"the versions differ ({'; '.join(changed)})")
    return warnings


def _consistency(
    name: str, base: Mapping[str, Any], new: Mapping[str, Any]
) -> ConsistencyChange | None:
    b, n = base["verification"], new["verification"]
    checks = (("verification", verification_status), ("simulated", simulated_status))
    spec = tuple(
        (check, before, after)
        for check, status in checks
        if (before := status(base) or "-") != (after := status(new) or "-")
    )
    same = (b["max_abs_error"], b["nodes_agree"]) == (n["max_abs_error"], n["nodes_agree"])
    if same and not spec:
        return None
    failure = (
        (b["max_abs_error"] == 0 and n["max_abs_error"] > 0)
        or (b["nodes_agree"] and not n["nodes_agree"])
        or any(after == FAIL and before != FAIL for _, before, after in spec)
    )
    return ConsistencyChange(
        name,
        b["max_abs_error"],
        n["max_abs_error"],
        b["nodes_agree"],
        n["nodes_agree"],
        failure,
        spec,
    )


def _scanned(report: Mapping[str, Any]) -> str:
    scan = report.get("scan")
    return f"a scan of {scan['parameter']}" if scan else "no scan"


def diff_reports(
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    fail_above: float,
    allow_workload_change: bool = False,
) -> DiffResult:
    """Compare two valid reports (see :func:`countbench.reports.load.load_report`).

    ``fail_above`` is the largest tolerated fall of ops/s, as a fraction (0.1 = 10 %).
    When the workloads (or modes) differ, no slowdown is a regression unless
    ``allow_workload_change``.
    Pairs come in the base report's order (strategies, then operations). Raises
    ``ValueError`` for a ``fail_above`` outside [0, 1)."""
    if not (math.isfinite(fail_above) and 0 <= fail_above < 1):
        raise ValueError(f"fail_above must be a fraction in [0, 1), not {fail_above!r}")
    base_results, new_results = named_results(base), named_results(new)
    pairs: list[PairDiff] = []
    consistency: list[ConsistencyChange] = []
    for name, before in base_results.items():
        after = new_results.get(name)
        if after is None:
            continue
        for operation, stats in before["operations"].items():
            if operation in after["operations"]:
                other = after["operations"][operation]
                pairs.append(pair_diff(name, operation, stats, other, fail_above))
        change = _consistency(name, before, after)
        if change is not None:
            consistency.append(change)
    notes = []
    scans = [_scanned(base), _scanned(new)]
    if scans[0] != scans[1]:
        notes.append(f"the base is {scans[0]}, the new report {scans[1]}: only equal points pair")
    tools = versions(base)["countbench"], versions(new)["countbench"]
    notes.append(f"compared: countbench {tools[0]} -> {tools[1]}")
    changed = workload_change(base, new)
    unjudged = None
    if scans[0] != scans[1] and not pairs:
        unjudged = f"the base is {scans[0]}, the new report {scans[1]}: no point pairs"
    elif not pairs:
        unjudged = "no strategy (or scan point) is in both reports: nothing to compare"
    elif changed and not allow_workload_change:
        unjudged = f"the workloads differ ({changed})"
    elif changed:
        notes.append(f"the workloads differ ({changed}); judged anyway (told to)")
    return DiffResult(
        pairs=pairs,
        only_in_base=[name for name in base_results if name not in new_results],
        only_in_new=[name for name in new_results if name not in base_results],
        consistency=consistency,
        warnings=_warnings(base, new),
        fail_above=fail_above,
        notes=notes,
        unjudged=unjudged,
    )
