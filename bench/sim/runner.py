"""``run_scenario``: resolve the strategy, run the simulation, build the :class:`SimResult`."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from ...strategies.base import (
    Consistency,
    Replicable,
    RequestReplica,
    Strategy,
    StrategyConfig,
    simulable,
)
from ...strategies.registry import discover
from .allowed import describe_bounds
from .engine import Simulation
from .errors import SimUsageError
from .faults import LatencyFault
from .history import History
from .knowledge import Watch
from .metrics import StalenessSummary
from .result import Convergence, Cost, Final, Operations, SimResult, Timeline, Verdict
from .scenario import Scenario


def replicated_strategies() -> dict[str, type[Strategy]]:
    """Every discoverable strategy the simulator can run (replicated ones, and service
    strategies with a replica twin), by name."""
    return {
        name: cls for name, cls in discover().items() if isinstance(cls, type) and simulable(cls)
    }


def resolve_strategy(strategy: str | type[Strategy]) -> type[Strategy]:
    """A strategy name or class -> a class the simulator can run (see
    :func:`~countbench.strategies.base.simulable`), or :class:`SimUsageError`."""
    if isinstance(strategy, str):
        name = strategy.strip()
        available = discover()
        if name not in available:
            known = ", ".join(replicated_strategies())
            raise SimUsageError(f"unknown strategy {name!r} (replicated strategies: {known})")
        cls: type[Strategy] = available[name]
    else:
        cls = strategy
    if not (isinstance(cls, type) and simulable(cls)):
        known = ", ".join(replicated_strategies())
        what = getattr(cls, "name", repr(cls))
        raise SimUsageError(
            f"strategy {what!r} is not replicated: the simulator runs replicas "
            f"(replicated strategies: {known}); strategies on a server run under "
            "real faults"
        )
    return cls


def run_scenario(
    strategy: str | type[Strategy],
    scenario: Scenario,
    keep_trace: bool = True,
    history: bool = False,
) -> SimResult:
    """Simulate ``scenario`` on the strategy's replicas; same inputs, same result and trace.

    With ``keep_trace`` False the trace's lines are hashed but not kept (``trace`` is
    empty; ``trace_hash`` and ``trace_lines`` are the same): for runs of millions of events.
    With ``history``, ``result.history`` holds the operation history (docs/history.md)."""
    cls = resolve_strategy(strategy)
    scenario = scenario.validate()
    config = StrategyConfig(nodes=scenario.nodes, session_timeout=scenario.session_timeout)
    replicable = cast(Replicable, cls(config))
    kept = None
    if history:
        probe = replicable.replica(0)
        kept = History(
            {
                "source": "simulator",
                "strategy": cls.name,
                "claim": str(cls.consistency),
                "specification": cls.specification.to_dict(),
                "session_timeout": scenario.session_timeout,
                "request_timeout": getattr(probe, "request_timeout", None),
                "requests": isinstance(probe, RequestReplica),
                "nodes": scenario.nodes,
                "seed": scenario.seed,
                "scenario": scenario.to_dict(),
            }
        )
    sim = Simulation(replicable, scenario, keep_trace, kept)
    sim.run()
    result = _result(cls, sim)
    if result.verdict.expected:
        result = _control(cls, scenario, result)
    if kept is not None:
        v = result.verdict
        kept.event(
            "end",
            sim.end,
            verdict={
                "passed": v.passed,
                "bug": v.bug,
                "allowed": v.allowed,
                "reasons": v.reasons,
                "reads_outside": sum(kept.judged.values()),
            },
        )
        result = replace(result, history=kept)
    return result


def _convergence(w: Watch) -> Convergence:
    return Convergence(
        w.label, w.healed_at, w.drained_after, w.agree_after, w.truth_after, w.allowed_after
    )


def _result(cls: type[Strategy], sim: Simulation) -> SimResult:
    sc, truth, know = sim.sc, sim.truth, sim.know
    values = sim.final_values
    errors = [value - truth.online for value in values]
    agree = bool(values) and min(values) == max(values)
    stop = sim.stop
    quiet = sim.quiet_watch or know.watch("quiescence", stop)
    quiescence = Convergence(
        "quiescence",
        stop,
        quiet.drained_after,
        None if sim.agree_since is None else sim.agree_since - stop,
        None if sim.truth_since is None else sim.truth_since - stop,
        None if sim.allowed_since is None else sim.allowed_since - stop,
    )
    ops = sim.ops
    sent = ops["login"] + ops["logout"] + ops["heartbeat"] + ops["read"]
    nc = sim.net_count
    error = {name: acc.summary() for name, acc in sim.err.items()}
    verdict = _verdict(cls, sc, quiescence, agree, errors, sim)
    return SimResult(
        strategy=cls.name,
        scenario=sc,
        stop=stop,
        end=sim.end,
        operations=Operations(
            logins=ops["login"],
            logouts=ops["logout"],
            heartbeats=ops["heartbeat"],
            reads=ops["read"],
            vanished=ops["vanish"],
            accepted_logins=sim.accepted[0],
            accepted_logouts=sim.accepted[1],
            rejected=sim.rejected,
            quiescence_heartbeats=sim.quiet_heartbeats,
            retries=sim.retries,
        ),
        error=error,
        spec_error={"all": sim.spec_err.summary(), "reads": sim.spec_read_err.summary()},
        reads=sim.read_err.summary(),
        reads_rejected=sim.reads_rejected,
        reads_partial=sim.reads_partial,
        staleness=StalenessSummary.of(know.changes, know.staleness),
        value_staleness={
            "samples": StalenessSummary.of(
                len(sim.sample_ages) + sim.never_allowed[0], sim.sample_ages
            ),
            "reads": StalenessSummary.of(len(sim.read_ages) + sim.never_allowed[1], sim.read_ages),
        },
        convergence=[_convergence(w) for w in sim.watches],
        quiescence=quiescence,
        final=Final(
            at=sim.end,
            truth=truth.online,
            values=values,
            errors=errors,
            max_abs_error=max((abs(e) for e in errors), default=0),
            agree=agree,
            allowed=list(sim.final_bounds),
            in_spec=[sim.final_bounds[0] <= v <= sim.final_bounds[1] for v in values],
            lost_changes=sim.lost_changes,
            accepted_balance=sim.accepted[0] - sim.accepted[1],
            vanished=ops["vanish"],
            vanished_unexpired=truth.pending,
        ),
        cost=Cost(
            client_operations=sent,
            messages=nc["messages"],
            bytes=nc["bytes"],
            messages_per_operation=nc["messages"] / sent if sent else 0.0,
            bytes_per_operation=nc["bytes"] / sent if sent else 0.0,
            metadata_bytes_mean=sim.meta_sum / sim.meta_n if sim.meta_n else 0.0,
            metadata_bytes_max=sim.meta_max,
            messages_total=nc["total"],
            delivered=nc["delivered"],
            duplicated=nc["dup"],
            lost=nc["lost"],
            cut=nc["cut"],
            to_down_node=nc["down"],
            in_flight_at_end=sim.in_flight,
        ),
        faults=[a.describe() for a in sim.applied],
        verdict=verdict,
        timeline=Timeline(sc.sample_interval, sim.timeline, sim.timeline_fault, sim.timeline_nodes),
        trace_hash=sim.trace.sha256(),
        trace_lines=len(sim.trace),
        trace=sim.trace.kept(),
    )


def _control(cls: type[Strategy], scenario: Scenario, result: SimResult) -> SimResult:
    """A failure outside the specification's assumption is expected only if the same run
    passes without what breaks the assumption (the faults that do more than delay
    messages, and gossip fan-out); otherwise it is a bug like any other."""
    kept = tuple(f for f in scenario.faults if isinstance(f, LatencyFault))
    control = run_scenario(
        cls, scenario.with_overrides(faults=kept, fanout=None), keep_trace=False
    ).verdict
    if control.passed:
        return result
    verdict = replace(
        result.verdict,
        expected=False,
        reasons=[
            *result.verdict.reasons,
            "it also fails where its assumption holds (the same run without "
            f"{', '.join(result.verdict.outside_assumption)}): {'; '.join(control.reasons)}",
        ],
    )
    return replace(result, verdict=verdict)


def broken_assumptions(cls: type[Strategy], sc: Scenario) -> list[str]:
    """What in ``sc`` breaks an assumption the strategy's specification states (empty:
    none). Exactly-once delivery holds only with every message sent to every peer and
    faults that at most delay messages."""
    if not cls.specification.exactly_once:
        return []
    broken = [fault.label() for fault in sc.faults if not isinstance(fault, LatencyFault)]
    if sc.gossip is not None:
        broken.append(f"gossip to {sc.gossip} peers")
    return broken


def _verdict(
    cls: type[Strategy],
    sc: Scenario,
    quiescence: Convergence,
    agree: bool,
    errors: list[int],
    sim: Simulation,
) -> Verdict:
    """Correct against the specification: see :mod:`.metrics` (Verdict)."""
    spec = cls.specification
    reasons: list[str] = []
    if sim.invalid_count:
        reasons.append(f"{sim.invalid_count} absurd count(s): {'; '.join(sim.invalid)}")
    if sim.beyond_worst is not None:
        excess, node, value, at = sim.beyond_worst
        reasons.append(
            f"{sim.beyond} count(s) above every value the accepted operations could give "
            f"(worst: node {node} counted {value} at {at:.6g}s, {excess} above the most)"
        )
    low, high = sim.final_bounds
    allowed = f"{describe_bounds(low, high)} ({spec.name})"
    outside = [(node, v) for node, v in enumerate(sim.final_values) if not low <= v <= high]
    if outside:
        shown = ", ".join(f"node {node} counted {v}" for node, v in outside[:5])
        more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        reasons.append(f"final count outside the allowed {allowed}: {shown}{more}")
    if cls.consistency is Consistency.STRONG and sim.requests:
        rule = (
            f"strong: every answered read (the final ones included) lies in the values "
            f"{spec.name} allows, but for users with an operation in flight or failed; "
            "failed reads are not wrong"
        )
        if sim.wrong_reads:
            reasons.append(
                f"{sim.wrong_reads} answered read(s) outside the allowed values beyond the "
                f"operations in doubt (worst by {sim.wrong_by})"
            )
    elif cls.consistency is Consistency.STRONG:
        rule = f"strong: every sample, read and final count lies in the values {spec.name} allows"
        if sim.spec_err.max:
            reasons.append(f"a sampled count was {sim.spec_err.max} outside the allowed values")
        if sim.spec_read_err.max:
            reasons.append(f"a read was {sim.spec_read_err.max} outside the allowed values")
    else:
        rule = (
            f"eventual: after quiescence all nodes agree on a value {spec.name} allows, "
            f"within {sc.budget:g}s (or of the last session expiry after it)"
        )
    # The allowed values keep moving after quiescence (vanished sessions expire, a
    # heartbeat opens a session again): a design whose nodes learn of that by message is
    # judged from the last move, when the allowed values settle.
    settled = max(sim.bounds_moved - sim.stop, 0.0)
    # One copy has nothing to converge: a strong request replica's counts move whenever the
    # server's table does (a session whose heartbeats were lost expiring late), so only
    # its agreement at the end is required.
    timed = not (sim.requests and cls.consistency is Consistency.STRONG)
    reached = quiescence.allowed_after
    if not agree:
        reasons.append(f"nodes disagree at the end: {sim.final_values}")
    elif timed and not outside and reached is not None and reached - settled > sc.budget:
        took = reached - settled
        reasons.append(
            f"nodes reached an allowed value only {took:g}s after it settled "
            f"(budget {sc.budget:g}s)"
        )
    broken = broken_assumptions(cls, sc) if reasons else []
    return Verdict(
        not reasons,
        str(cls.consistency),
        rule,
        reasons,
        sc.seed,
        specification=spec.name,
        meaning=spec.describe(),
        allowed=[low, high],
        expected=bool(broken),
        outside_assumption=broken,
    )
