"""Rich tables: the strategy list, the comparison (the article's columns, measured) and the
per-operation detail of a run. Everything is rendered from a report dict, so a saved
report renders the same as a fresh one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .article import ARTICLE_TABLE, ArticleRow
from .load import scan_points
from .numbers import duration, short, short_number, spread_text
from .samples import estimate, rate_text, spread_note
from .verdicts import (
    EXPECTED,
    PASS,
    UNKNOWN,
    allowed_text,
    online_error,
    real_fault_status,
    short_of_rate,
    simulated_status,
    verification_status,
)

DIM = "dim"


#: The claimed consistency's code in the compact table (the legend says what each is).
CLAIM_CODES = {"strong": "S", "eventual": "E", "approximate": "A"}


def strategy_list(rows: Iterable[Mapping[str, Any]]) -> Table:
    """Every strategy: name, claimed consistency (its code), what its count means, modes
    (t thread, p process, a asyncio), how its nodes talk, and its summary."""
    table = Table(
        title="countbench strategies",
        title_justify="left",
        caption="Claim: S strong, E eventual, A approximate. Modes: t thread, p process, "
        "a asyncio. Counts: what the count means (the spec it is judged by).",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("Strategy", style="bold", no_wrap=True)
    table.add_column("Claim", no_wrap=True)
    table.add_column("Counts", max_width=10, overflow="fold")
    table.add_column("Modes", no_wrap=True)
    table.add_column("Talk", no_wrap=True)
    table.add_column("Summary", ratio=1)
    for row in rows:
        modes = "".join(m[0] for m in ("thread", "process", "asyncio") if m in row["modes"])
        table.add_row(
            row["name"],
            CLAIM_CODES.get(row["consistency_claim"], row["consistency_claim"]),
            row["specification"]["name"] if "specification" in row else "?",
            modes,
            row["topology"],
            row["summary"],
        )
    return table


def _article(result: Mapping[str, Any]) -> ArticleRow | None:
    approach = result["strategy"].get("article_approach")
    return ARTICLE_TABLE.get(approach) if approach else None


def _with_article(measured: str, article: str | None) -> Text:
    text = Text(measured)
    if article:
        text.append(f"\narticle: {article}", style=DIM)
    return text


def _mark(text: Text, status: str, compact: bool = False) -> None:
    """``status`` (✓, ✗, ✗ expected, ?) in its colour; compact: one character, ! for an
    expected failure (one its design predicts)."""
    style = {PASS: "green", EXPECTED: "yellow", UNKNOWN: DIM}.get(status, "bold red")
    shown = ("!" if status == EXPECTED else status[:1]) if compact else status
    text.append(shown, style=style)


def mix_text(report: Mapping[str, Any]) -> str:
    """'50% reads, 39% heartbeats, 11% logins/logouts': what one Mixed/sec operation is
    (from the report's measured mix; the read ratio alone in reports without one)."""
    mix: Mapping[str, int] = report.get("mix") or {}
    total = sum(mix.values())
    if not total:
        return f"{report['workload']['read_ratio']:.0%} reads"
    writes = mix.get("login", 0) + mix.get("logout", 0)
    return (
        f"{mix.get('read', 0) / total:.0%} reads, {mix.get('heartbeat', 0) / total:.0%} "
        f"heartbeats, {writes / total:.0%} logins/logouts"
    )


def consistency_cell(result: Mapping[str, Any]) -> Text:
    """Both notions (see :mod:`.verdicts`): correct against the strategy's specification
    (✓/✗ per check), and the error against the users actually online."""
    claim = result["strategy"]["consistency_claim"]
    check = result["verification"]
    spec = check.get("specification", "?")
    text = Text(f"{claim} · spec {spec} ")
    _mark(text, verification_status(result))
    if check.get("judged") is False:
        text.append(" (not judged: timeout shorter than the pass)", style=DIM)
    if check.get("correct") is False:
        allows = allowed_text(check["allowed"])
        text.append(f" (counts {check['counts']}, spec allows {allows})", style="red")
    text.append(f"\nvs online {online_error(result):+,} of {check['truth']:,}")
    if not check["nodes_agree"]:
        text.append(" (nodes disagree)", style="red")
    sim = result.get("simulation")
    status = simulated_status(result)
    if sim and status:
        # by value where the report has it (how long ago the spec last allowed the count)
        stale = sim.get("value_staleness", {}).get("samples", sim["staleness"]).get("p99")
        text.append(f"\nsimulated ({sim['faults'].replace(',', ', ')}; seed {sim['seed']}): spec ")
        _mark(text, status)
        text.append(
            f" · vs online: max {sim['error']['all']['max']:,}, final "
            f"{max(sim['final']['errors'], key=abs, default=0):+,} · p99 stale "
            + (f"{stale:,.0f} s" if stale is not None else "-")
        )
    real = result.get("real_faults")
    if real:
        check, status = real["check"], real_fault_status(result) or UNKNOWN
        final = check["final"]
        faults = ", ".join(real["config"]["faults"])
        text.append(
            f"\nreal faults ({faults}; seed {real['seed']}): reads outside bounds "
            f"{check['invalid_reads']:,} of {check['reads']:,} · final "
            + (f"{final['value']:,} of [{final['lower']:,}, {final['upper']:,}]" if final else "-")
            + " · verdict "
        )
        _mark(text, status)
    reads = result.get("reads")
    if reads:
        if reads["staleness_max_s"] > 0:
            text.append(
                f"\nread age mean {reads['staleness_mean_s']:,.0f} s, "
                f"max {reads['staleness_max_s']:,.0f} s"
            )
        text.append(f"\npartial reads {reads['partial_reads']:,} of {reads['reads']:,}")
    row = _article(result)
    if row:
        text.append(f"\narticle: {row.consistency}", style=DIM)
    return text


def complexity_cell(result: Mapping[str, Any]) -> Text:
    c = result["complexity"]
    row = _article(result)
    return _with_article(
        f"{c['lines']} lines · cc {c['cyclomatic']} (max {c['max_function']})",
        row.complexity if row else None,
    )


def unstable(report: Mapping[str, Any]) -> list[str]:
    """'strategy operation' for every benchmark pyperf warned about."""
    return [
        f"{r['strategy']['name']} {name}"
        for r in report["results"]
        for name, op in r["operations"].items()
        if op["warnings"]
    ]


def shaping(spec: Mapping[str, Any]) -> list[str]:
    """What shapes a workload beyond its sizes, for a title: its scenario and its open-loop
    rate (nothing for the default: stationary, closed loop)."""
    parts = []
    if spec.get("scenario"):
        parts.append(f"scenario {spec['scenario']}")
    if spec.get("rate"):
        parts.append(f"open loop {short(spec['rate'])}/s {spec.get('arrivals', 'poisson')}")
    return parts


def _title(report: Mapping[str, Any]) -> str:
    spec = report["workload"]
    command = report["tool"].get("command", "compare")
    extra = "".join(f" · {escape(part)}" for part in shaping(spec))  # a file's name
    return (
        f"countbench {command} · {report['mode']} mode · {spec['workers']} workers · "
        f"{spec['nodes']} nodes · {spec['users']:,} users · preset {report['preset']}{extra}"
    )


def _caption(report: Mapping[str, Any], compact: bool = False) -> str:
    warned = unstable(report)
    figures = sum(len(r["operations"]) for r in report["results"])
    if report["preset"] == "smoke":
        caption = "smoke preset: one value per benchmark, so no spread and no stability check"
    elif warned and compact:
        caption = (
            f"pyperf found {len(warned)} of the {figures} figures unstable "
            "(--wide names them; `run` shows pyperf's reasons)"
        )
    elif warned:
        caption = f"pyperf found these unstable: {', '.join(warned)} (see `run` or the JSON report)"
    else:
        caption = "pyperf raised no stability warning"
    return f"{spread_note(report)}\n{caption}"


def _rate(operation: Mapping[str, Any]) -> Text:
    """'1.75M' and, dim below it, how far a rerun's median may land ('±22%'), if known."""
    figure = estimate(operation)
    text = Text(short(figure.ops_per_sec))
    if figure.rerun is not None:
        text.append(f"\n{spread_text(figure.ops_per_sec, *figure.rerun)}", style=DIM)
    return text


def _verdicts(result: Mapping[str, Any]) -> Text:
    """The claim's code, then a mark per check: the run against the spec, the simulator
    (replicated strategies), real faults (when measured)."""
    text = Text(CLAIM_CODES.get(result["strategy"]["consistency_claim"], "?") + " ")
    _mark(text, verification_status(result), compact=True)
    for status in (simulated_status(result), real_fault_status(result)):
        if status is not None:
            _mark(text, status, compact=True)
    return text


def compact_comparison(report: Mapping[str, Any]) -> Table:
    """The article's columns in a table that reads at 80 columns: one short figure per
    cell, the claim as a code, one mark per check; ``--wide`` gives every detail."""
    truths = {r["verification"]["truth"] for r in report["results"]}
    truth = f" ({truths.pop():,})" if len(truths) == 1 else ""
    legend = (
        "Consistency: claim S strong, E eventual, A approximate; then one mark per check "
        "against the strategy's own spec (the run, the simulator, real faults where measured): "
        "✓ correct, ✗ not, ! a failure its design predicts. "
        f"Online: the final count minus the users online{truth}. Lines: the strategy's code "
        f"(its complexity). Mixed: {mix_text(report)}. --wide: every detail."
    )
    table = Table(
        title=_title(report),
        title_justify="left",
        caption=f"{_caption(report, compact=True)}\n{legend}",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("Approach", style="bold", no_wrap=True)
    for header in ("Reads/s", "Writes/s", "Mixed/s"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("Consistency", no_wrap=True)
    table.add_column("Online", justify="right", no_wrap=True)
    table.add_column("Lines", justify="right", no_wrap=True)
    for result in report["results"]:
        operations = result["operations"]
        check = result["verification"]
        error = Text(f"{online_error(result):+,}" + ("" if truth else f"/{check['truth']:,}"))
        if not check["nodes_agree"]:
            error.append("*", style="red")
        table.add_row(
            result["strategy"]["name"],
            _rate(operations["reads"]),
            _rate(operations["writes"]),
            _rate(operations["mixed"]),
            _verdicts(result),
            error,
            f"{result['complexity']['lines']:,}",
        )
    return table


def comparison(report: Mapping[str, Any]) -> Table:
    """The article's table, measured, every detail: Approach | Reads/sec | Writes/sec |
    Consistency | Complexity, the mixed workload's throughput, the article's own figures."""
    table = Table(
        title=_title(report),
        title_justify="left",
        show_lines=True,
        caption=_caption(report),
        caption_justify="left",
    )
    table.add_column("Approach", style="bold")
    table.add_column("Reads/sec", justify="right")
    table.add_column("Writes/sec", justify="right")
    table.add_column(f"Mixed/sec ({mix_text(report)})", justify="right")
    table.add_column("Consistency (correct vs its spec; error vs online)")
    table.add_column("Complexity (measured)")
    for result in report["results"]:
        strategy, operations = result["strategy"], result["operations"]
        row = _article(result)
        approach = Text(strategy["name"])
        if strategy.get("article_approach"):
            approach.append(f"\n{strategy['article_approach']}", style=DIM)
        reads, writes = (
            row and short_number(row.reads_per_sec),
            row and short_number(row.writes_per_sec),
        )
        table.add_row(
            approach,
            _with_article(rate_text(operations["reads"]), reads),
            _with_article(rate_text(operations["writes"]), writes),
            rate_text(operations["mixed"]),
            consistency_cell(result),
            complexity_cell(result),
        )
    return table


def operations_detail(result: Mapping[str, Any]) -> Table:
    """One strategy's operations: throughput, time per operation, pyperf's sampling."""
    table = Table(title=f"{result['strategy']['name']} · per operation", title_justify="left")
    table.add_column("Operation")
    table.add_column("ops/s", justify="right")
    table.add_column("time per op", justify="right")
    table.add_column("processes x values x loops x ops", justify="right")
    table.add_column("pyperf warnings")
    for name, op in result["operations"].items():
        table.add_row(
            name,
            rate_text(op),
            f"{op['mean'] * 1e9:,.0f} ns ± {op['stdev'] * 1e9:,.0f}",
            _sampling(op),
            Text("; ".join(op["warnings"]) or "none", style="yellow" if op["warnings"] else DIM),
        )
    return table


def _sampling(operation: Mapping[str, Any]) -> str:
    """'6 x 3 x 265 x 2,000': processes x values per process x loops x operations."""
    processes = max(estimate(operation).processes, 1)
    per_process = len(operation["values"]) // processes
    return f"{processes} x {per_process} x {operation['loops']} x {operation['inner_loops']:,}"


def latency_detail(result: Mapping[str, Any]) -> Table:
    """Per-operation latency from the HDR histograms of the verification pass."""
    table = Table(
        title=f"{result['strategy']['name']} · latency per operation (µs, "
        + (
            "service time; from the intended start: below)"
            if result.get("open_loop")
            else "closed-loop clients)"
        ),
        title_justify="left",
    )
    table.add_column("Operation")
    for column in ("count", "p50", "p90", "p99", "p99.9", "max"):
        table.add_column(column, justify="right")
    for kind, s in result.get("latency", {}).items():
        table.add_row(
            kind,
            f"{int(s['count']):,}",
            *(f"{s[key]:,.1f}" for key in ("p50_us", "p90_us", "p99_us", "p99.9_us", "max_us")),
        )
    return table


def _figures_table(title: str, caption: str, headers: tuple[str, ...]) -> Table:
    """A table under the comparison: an Approach column, then right-aligned figures. The
    title may hold a user's file name: it is shown as it is, never read as markup."""
    table = Table(
        title=escape(title),
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("Approach", style="bold", no_wrap=True)
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    return table


def open_loop_table(report: Mapping[str, Any]) -> Table | None:
    """An open-loop run's figures (``--rate``): per strategy, the offered and achieved rate
    and latency from each call's intended start, with the service time's p99.9 beside it;
    None for a closed-loop report."""
    rows = [r for r in report["results"] if r.get("open_loop")]
    if not rows:
        return None
    first = rows[0]["open_loop"]
    table = _figures_table(
        f"Open loop: {short(first['offered_per_sec'])} operations/s offered "
        f"({first['arrivals']} arrivals), latency from each call's intended start",
        "Achieved: each worker's calls over the time from its first intended start to its "
        "last answer, summed; 'short' below 95% of what the drawn schedule asked for. "
        "Service p99.9: from the call's own start, what a closed-loop client would report.",
        ("Achieved/s", "p50", "p99", "p99.9", "Service p99.9"),
    )
    for result in rows:
        figures = result["open_loop"]
        achieved = Text(short(figures["achieved_per_sec"]))
        if short_of_rate(figures):
            achieved.append(" short", style="red")
        latency = figures["latency"]["all"]
        table.add_row(
            result["strategy"]["name"],
            achieved,
            *(duration(latency[key]) for key in ("p50_us", "p99_us", "p99.9_us")),
            duration(figures["service"]["all"]["p99.9_us"]),
        )
    return table


def scenario_table(report: Mapping[str, Any]) -> Table | None:
    """A shaped scenario's error during the pass (``--scenario``): per strategy and shape
    window, the reads' largest and mean |count - users online| and their mean signed
    error, beside the same for the reads outside every window; None without a scenario."""
    rows = [r for r in report["results"] if r.get("scenario")]
    if not rows:
        return None
    windows = rows[0]["scenario"]["windows"]
    spans = ", ".join(f"{w['shape']} {w['from']:,.0f}-{w['to']:,.0f} s" for w in windows)
    name = rows[0]["scenario"]["name"]
    table = _figures_table(
        f"Scenario {name}: error during the pass ({spans})",
        "Error: how far a read's count is from the users online as far as every worker had "
        "got while it ran (0: it is one of those counts). In: the reads in the shape's "
        "window (virtual seconds); out: the others. Max and mean of |error|; net: its mean "
        "with its sign (+ counts too many).",
        ("In: max", "mean", "net", "Out: max", "mean", "net"),
    )
    for result in rows:
        figures = result["scenario"]
        for index, window in enumerate(figures["windows"]):
            out = figures["outside"]
            table.add_row(
                result["strategy"]["name"] if index == 0 else "",
                *(_error_cells(window)),
                *(_error_cells(out) if index == 0 else ("", "", "")),
            )
    return table


def _error_cells(figures: Mapping[str, Any]) -> tuple[str, str, str]:
    if not figures["reads"]:
        return "-", "-", "-"
    return (
        f"{figures['error_max']:,}",
        f"{figures['error_mean']:,.1f}",
        f"{figures['error_net_mean']:+,.1f}",
    )


def report_tables(report: Mapping[str, Any], wide: bool) -> list[Text | Table]:
    """One report's tables: the comparison, and the open-loop and scenario figures when it
    has them."""
    draw = comparison if wide else compact_comparison
    shown: list[Text | Table] = [draw(report)]
    for extra in (open_loop_table(report), scenario_table(report)):
        if extra is not None:
            shown.append(extra)
    return shown


def comparison_tables(report: Mapping[str, Any], wide: bool = False) -> list[Text | Table]:
    """The comparison table (``wide``: with every detail) and, for an open-loop run, its
    figures; for a ``--param`` scan, a heading and those tables per point."""
    points = scan_points(report)
    if not points[0][0]:
        return report_tables(report, wide)
    shown: list[Text | Table] = []
    for parameter, value, point in points:
        shown += [Text(f"{parameter} = {value}"), *report_tables(point, wide)]
    return shown
