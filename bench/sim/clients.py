"""The clients: every user's logins, heartbeats and logouts, the vanishings, and the reads.

Users come from :func:`countbench.bench.workload.user_events` (seeded by the ``workload``
generator). User ``u`` always talks to node ``u % nodes``. At each logout, with probability
``vanish_rate`` (drawn by the ``clients`` generator) the user *vanishes* instead: no logout
is sent and the session expires ``session_timeout`` after the user's last heartbeat. Reads
come at a fixed rate: read ``k`` (from 0) at ``(k + 1) / reads_per_second``, to node
``k % nodes``. The schedule holds exactly ``operations`` entries, merged in time order (at
equal times a user event comes before a read); a vanishing takes the place of the logout it
replaces, so the schedule's span does not depend on the vanish rate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING

from ..workload import Op, WorkloadSpec, user_events

if TYPE_CHECKING:
    from .scenario import Scenario


class ClientOp(IntEnum):
    LOGIN = 0
    LOGOUT = 1
    HEARTBEAT = 2
    READ = 3
    VANISH = 4  # a logout that is never sent


@dataclass(frozen=True, slots=True)
class Schedule:
    """Parallel lists: time, kind, and the user (or, for a read, the node read)."""

    times: list[float]
    kinds: list[ClientOp]
    targets: list[int]
    #: (shape kind, from, to): the virtual seconds each of the scenario's shapes shapes.
    windows: tuple[tuple[str, float, float], ...] = ()

    def __len__(self) -> int:
        return len(self.times)

    @property
    def end(self) -> float:
        """Virtual time of the last client operation (0 when there is none)."""
        return self.times[-1] if self.times else 0.0


def client_schedule(
    scenario: Scenario, workload_rng: random.Random, clients_rng: random.Random
) -> Schedule:
    sc = scenario
    span: float | None = None
    windows: tuple[tuple[str, float, float], ...] = ()
    if sc.shapes:  # placed in the span the schedule has without them (as workload.build)
        dry = [random.Random(), random.Random()]
        dry[0].setstate(workload_rng.getstate())
        dry[1].setstate(clients_rng.getstate())
        span = client_schedule(replace(sc, shapes=()), *dry).end or 1.0
        windows = tuple((shape.kind, *shape.window(span)) for shape in sc.shapes)
    spec = WorkloadSpec(
        users=sc.users,
        session_length=sc.session_length,
        heartbeat_interval=sc.heartbeat_interval,
        session_timeout=sc.session_timeout,
        nodes=sc.nodes,
        workers=1,
        seed=sc.seed,
        scenario="simulated" if sc.shapes else "",
        shapes=sc.shapes,
    )
    events = user_events(spec, workload_rng, span=span)
    rate = sc.reads_per_second
    times: list[float] = []
    kinds: list[ClientOp] = []
    targets: list[int] = []
    reads = 0
    next_read = 1.0 / rate if rate > 0 else float("inf")
    now, op, user = next(events)
    vanish = sc.vanish_rate
    while len(times) < sc.operations:
        if now <= next_read:
            kind = ClientOp.VANISH if op is Op.VANISH else ClientOp(int(op))
            if op is Op.LOGOUT and vanish > 0 and clients_rng.random() < vanish:
                kind = ClientOp.VANISH
            times.append(now)
            kinds.append(kind)
            targets.append(user)
            now, op, user = next(events)
        else:
            times.append(next_read)
            kinds.append(ClientOp.READ)
            targets.append(reads % sc.nodes)
            reads += 1
            next_read = (reads + 1) / rate
    return Schedule(times, kinds, targets, windows)
