"""A real-fault run on the terminal (table, error sparkline, verdict) and in JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ...reports.sparkline import colored, sparkline
from ..sim.history import History
from .history import ReadCheck
from .runner import (
    FaultWindow,
    RealFaultConfig,
    RealFaultError,
    RealFaultResult,
    run_real_faults,
)

_EXAMPLES = 10


def verdict(result: RealFaultResult, consistency: str = "strong") -> tuple[bool, str]:
    """(passed, one-line summary). A strategy that claims strong consistency passes when
    every read and the final count lie within the counter check's bounds; one that claims
    less (eventual, approximate) when the final count, read after the faults healed and
    a fresh sync, does: its reads may lag, and how many did is in the summary."""
    check = result.check
    final = check.final
    if final is None:
        return False, "no answer to the final read after the faults healed"
    if consistency != "strong" and final.valid:
        lagging = len(check.invalid_reads)
        return True, (
            f"final count {final.op.value} within [{final.lower}, {final.upper}]; "
            f"{lagging} of {len(check.reads)} reads outside their bounds "
            f"(allowed: the strategy claims {consistency} consistency)"
        )
    if check.valid:
        return True, (
            f"all {len(check.reads)} reads and the final count lie within what the clients "
            "were acknowledged and what may have been applied"
        )
    parts = []
    bad = check.invalid_reads
    if bad:
        parts.append(f"{len(bad)} of {len(check.reads)} reads outside their bounds")
    if check.lost:
        parts.append(
            f"up to {check.lost} below (acknowledged logins lost, or logouts applied twice)"
        )
    if check.extra:
        parts.append(
            f"up to {check.extra} above (logins applied twice, or acknowledged logouts lost)"
        )
    if not final.valid:
        parts.append(f"final count {final.op.value} outside [{final.lower}, {final.upper}]")
    return False, "; ".join(parts)


def _read_row(r: ReadCheck) -> dict[str, Any]:
    op = r.op
    return {
        "client": op.client,
        "start": round(op.start, 6),
        "end": round(op.end, 6),
        "value": op.value,
        "lower": r.lower,
        "upper": r.upper,
    }


def to_dict(result: RealFaultResult, consistency: str) -> dict[str, Any]:
    config = result.config
    check = result.check
    passed, summary = verdict(result, consistency)
    final = check.final
    return {
        "real_faults": {
            "strategy": config.strategy,
            "consistency_claimed": consistency,
            "seed": config.seed,
            "config": {
                "faults": list(config.faults),
                "clients": config.clients,
                "users_per_client": config.users,
                "duration_s": config.duration,
                "request_timeout_s": config.timeout,
                "retries": config.retries,
                "rate_per_client": config.rate,
                "read_ratio": config.read_ratio,
                "persist": config.persist,
            },
            "server": result.target,
            "windows": [
                {"fault": w.name, "start_s": round(w.start, 6), "end_s": round(w.end, 6)}
                for w in result.windows
            ],
            "clients": result.per_client(),
            "check": {
                "reads": len(check.reads),
                "invalid_reads": len(check.invalid_reads),
                "most_below": check.lost,
                "most_above": check.extra,
                "final": None if final is None else _read_row(final),
                "invalid_examples": [_read_row(r) for r in check.invalid_reads[:_EXAMPLES]],
            },
            "verdict": {"passed": passed, "summary": summary},
        }
    }


def _summary_table(result: RealFaultResult, consistency: str) -> Table:
    config = result.config
    table = Table(title=f"{config.strategy} under real faults (claims {consistency})")
    table.add_column("client", justify="right")
    for name in ("ops", "ok", "fail", "info", "retried"):
        table.add_column(name, justify="right")
    for row in result.per_client():
        table.add_row(*(str(row[k]) for k in ("client", "ops", "ok", "fail", "info", "retried")))
    return table


def deviation_series(result: RealFaultResult, columns: int) -> tuple[list[int], list[bool]]:
    """Per time column: the largest distance of a read from its bounds, and whether a
    fault was active."""
    span = max(result.config.duration, 1e-9)
    values = [0] * columns
    active = [False] * columns
    for r in result.check.reads:
        col = min(columns - 1, max(0, int(r.op.start / span * columns)))
        values[col] = max(values[col], r.below, r.above)
    for w in result.windows:
        first = max(0, int(w.start / span * columns))
        last = min(columns - 1, int(w.end / span * columns))
        for col in range(first, last + 1):
            active[col] = True
    return values, active


def print_result(out: Console, result: RealFaultResult, consistency: str) -> None:

    config = result.config
    server = result.target
    out.print(
        f"server: {server.get('service')} ({server.get('origin')}), persistence: "
        f"{server.get('persistence')}; {config.clients} clients, request timeout "
        f"{config.timeout:g} s, {config.retries} retries, seed {config.seed}",
        markup=False,
        highlight=False,
    )
    for w in result.windows:
        out.print(f"{w.name}: {w.start:.2f} s .. {w.end:.2f} s", markup=False, highlight=False)
    out.print(_summary_table(result, consistency))
    check = result.check
    final = check.final
    if final is not None:
        out.print(
            f"final count {final.op.value}; possible [{final.lower}, {final.upper}]",
            markup=False,
            highlight=False,
        )
    else:
        out.print("final count: no answer from the server", markup=False, highlight=False)
    width = max(10, min(80, out.width - 2))
    values, active = deviation_series(result, width)
    top = max(values)
    bars, _ = sparkline(values, active)
    out.print(
        f"reads' distance outside their bounds over the run (0..{top}; red = fault active)",
        markup=False,
        highlight=False,
    )
    out.print(colored(bars, active))
    passed, summary = verdict(result, consistency)
    style = "bold green" if passed else "bold red"
    out.print(Text(f"{'PASS' if passed else 'FAIL'}: {summary}", style=style))


def history(result: RealFaultResult, consistency: str, specification: dict[str, Any]) -> History:
    """The run as a history (docs/history.md, ``source: real``): every client operation's
    invoke and completion (with its attempts), the fault windows and the final read, in
    time order on the clients' clock; the counter check's verdict in the last line."""
    config, check = result.config, result.check
    kept = History(
        {
            "source": "real",
            "strategy": config.strategy,
            "claim": consistency,
            "specification": specification,
            "session_timeout": None,
            "request_timeout": config.timeout,
            "requests": True,
            "nodes": config.nodes,
            "seed": config.seed,
            "scenario": {"faults": list(config.faults), "clients": config.clients},
        }
    )
    events: list[tuple[float, int, int, Any]] = []  # time, order at a tie, seq, what
    ops = [*result.ops, *([result.final] if result.final is not None else [])]
    for seq, op in enumerate(ops):
        events.append((op.start, 1, seq, ("invoke", op)))
        events.append((op.end, 2, seq, ("complete", op)))
    for i, window in enumerate(result.windows):
        events.append((window.start, 0, i, ("start", window)))
        events.append((window.end, 0, i, ("end", window)))
    indices: dict[int, int] = {}
    for at, _, seq, (what, item) in sorted(events, key=lambda e: e[:3]):
        if isinstance(item, FaultWindow):
            kept.event("fault", at, event=what, fault=item.name, index=seq)
            continue
        op, final = item, item is result.final
        kind = "read" if op.kind == "count" else op.kind
        if what == "invoke":
            process = "final" if final else f"client{op.client}"
            indices[seq] = kept.invoke(at, process, 0, kind, op.user or None)
        else:
            kept.complete(indices[seq], at, str(op.outcome), op.value, attempts=op.attempts)
            if final and op.value is not None:
                kept.event("final", at, node=0, value=op.value)
    passed, summary = verdict(result, consistency)
    final_check = check.final
    kept.event(
        "end",
        max((e[0] for e in events), default=0.0),
        verdict={
            "passed": passed,
            "bug": not passed,
            "allowed": [final_check.lower, final_check.upper] if final_check else [],
            "reasons": [] if passed else [summary],
            "reads_outside": len(check.invalid_reads),
        },
    )
    return kept


def real_chaos(
    config: RealFaultConfig,
    consistency: str,
    json_path: Path | None,
    force: bool,
    history_path: Path | None = None,
    specification: dict[str, Any] | None = None,
) -> bool:
    """``countbench chaos`` for a service strategy claiming ``consistency``: run, print,
    write ``json_path`` (and the history to ``history_path``); returns whether the verdict
    passed. Bad input raises :class:`RealFaultError` before any server starts."""
    from ...reports.json_report import ReportPathError, check_output_path, write_json_atomic

    for path in (json_path, history_path):
        if path is None:
            continue
        try:
            check_output_path(path, force)
        except ReportPathError as exc:
            raise RealFaultError(str(exc)) from None
    err = Console(stderr=True)
    result = run_real_faults(config, progress=lambda step: err.print(f"[dim]{step}[/dim]"))
    out = Console()
    print_result(out, result, consistency)
    if json_path is not None:
        report = {
            "kind": "countbench-chaos",
            "schema_version": 1,
            "tool": {"name": "countbench", "command": "chaos"},
        }
        write_json_atomic(json_path, {**report, **to_dict(result, consistency)}, force)
        out.print(f"result written to {json_path}", markup=False, highlight=False)
    if history_path is not None:
        history(result, consistency, specification or {}).write(history_path, force)
        out.print(f"history written to {history_path}", markup=False, highlight=False)
    return verdict(result, consistency)[0]
