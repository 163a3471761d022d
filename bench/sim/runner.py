"""``run_scenario``: resolve the strategy, run the simulation, build the :class:`SimResult`."""

from __future__ import annotations

from typing import cast

from ...strategies.base import Consistency, Replicable, Strategy, StrategyConfig, simulable
from ...strategies.registry import discover
from .engine import Simulation
from .errors import SimUsageError
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
    strategy: str | type[Strategy], scenario: Scenario, keep_trace: bool = True
) -> SimResult:
    """Simulate ``scenario`` on the strategy's replicas; same inputs, same result and trace.

    With ``keep_trace`` False the trace's lines are hashed but not kept (``trace`` is
    empty; ``trace_hash`` and ``trace_lines`` are the same): for runs of millions of events."""
    cls = resolve_strategy(strategy)
    scenario = scenario.validate()
    config = StrategyConfig(nodes=scenario.nodes, session_timeout=scenario.session_timeout)
    sim = Simulation(cast(Replicable, cls(config)), scenario, keep_trace)
    sim.run()
    return _result(cls, sim)


def _convergence(w: Watch) -> Convergence:
    return Convergence(w.label, w.healed_at, w.drained_after, w.agree_after, w.truth_after)


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
        ),
        error=error,
        reads=sim.read_err.summary(),
        reads_rejected=sim.reads_rejected,
        reads_partial=sim.reads_partial,
        staleness=StalenessSummary.of(know.changes, know.staleness),
        convergence=[_convergence(w) for w in sim.watches],
        quiescence=quiescence,
        final=Final(
            at=sim.end,
            truth=truth.online,
            values=values,
            errors=errors,
            max_abs_error=max((abs(e) for e in errors), default=0),
            agree=agree,
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


def _verdict(
    cls: type[Strategy],
    sc: Scenario,
    quiescence: Convergence,
    agree: bool,
    errors: list[int],
    sim: Simulation,
) -> Verdict:
    reasons: list[str] = []
    if cls.consistency is Consistency.STRONG and sim.requests:
        rule = (
            "strong: every answered read (the final ones included) equals the truth, but for "
            "users with an operation in flight or failed; failed reads are not wrong"
        )
        if sim.wrong_reads:
            reasons.append(
                f"{sim.wrong_reads} answered read(s) wrong beyond the operations in doubt "
                f"(worst by {sim.wrong_by})"
            )
    elif cls.consistency is Consistency.STRONG:
        rule = "strong: every sample, read and final count equals the truth"
        if sim.err["all"].max:
            reasons.append(f"a sampled count was off by {sim.err['all'].max}")
        if sim.read_err.max:
            reasons.append(f"a read was off by {sim.read_err.max}")
        if any(errors):
            reasons.append(f"final counts off by {errors}")
    else:
        rule = (
            f"eventual: all nodes agree within {sc.budget:g}s of quiescence, or of the "
            "last session expiry after it"
        )
    # Sessions that vanished keep expiring after quiescence: a design whose nodes learn of
    # another's expiry by message is judged from the last one, when the truth settles.
    settled = max(sim.truth.expired_at - sim.stop, 0.0)
    # One copy has nothing to converge: a strong request replica's counts move whenever the
    # server's table does (a session whose heartbeats were lost expiring late), so only
    # its agreement at the end is required.
    timed = not (sim.requests and cls.consistency is Consistency.STRONG)
    if not agree:
        reasons.append(f"nodes disagree at the end: {sim.final_values}")
    elif (
        timed
        and quiescence.agree_after is not None
        and quiescence.agree_after - settled > sc.budget
    ):
        took = quiescence.agree_after - settled
        reasons.append(
            f"nodes agreed only {took:g}s after the truth settled (budget {sc.budget:g}s)"
        )
    return Verdict(not reasons, str(cls.consistency), rule, reasons, sc.seed)
