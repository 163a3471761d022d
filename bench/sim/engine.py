"""The simulation loop: replicas, clients, network and faults on one virtual clock.

Contract: :meth:`Simulation.run` is a pure function of (strategy class, scenario). The
replicas are the strategy's own :class:`~countbench.strategies.base.Replica` objects,
driven only through their interface; the simulator observes them with ``count(now)``
(assumed to have no effect on later answers). Each node calls ``sync(now)`` every
``sync_interval`` (node i first at ``(i + 1) / nodes`` of an interval) and the returned
messages, and any returned by ``receive``, go through :class:`~.network.Network`; a
broadcast goes to every other node, or to ``fanout`` peers drawn for it (the scenario's
``gossip`` generator).
A message is dropped if its link is cut when it is sent or when it arrives, or if its
destination is down when it arrives. Every event appends one line to the trace.

A :class:`~countbench.strategies.base.RequestReplica` (its reads, and maybe its writes,
are requests over the network) is driven through ``request``/``poll`` instead: each
client operation gets an id (in scheduling order) and a deadline event at its start plus
the replica's ``request_timeout``; ``poll`` follows every call into the replica; a request
still unfinished at its deadline (its node down, or restarted without its state) fails.
Such a node's count, for the grid samples and the quiescence checks, is the value of its
last answered read; in quiescence every live node is read (a *probe*) at every
``sync_interval`` while the answer can come before ``end``, and the final counts are the
last probes' values. The knowledge of changes (staleness) is not tracked for them: they
replicate nothing, a read asks the nodes that hold the state. See :mod:`.metrics`.
"""

from __future__ import annotations

import random
from typing import Any

from ...strategies.base import Answer, Message, Replica, Replicable, RequestReplica
from ...strategies.spec import SESSIONS, Counts, Specification
from ..workload import user_name
from .allowed import COUNT_LIMIT, Allowed, ValueAges, checked_count, shown
from .clients import ClientOp, client_schedule
from .clock import EventQueue, Seeds, Trace
from .faults import CrashFault, Fault, PartitionFault
from .history import History
from .knowledge import Knowledge, Watch
from .metrics import ErrorAccumulator
from .network import Network
from .scenario import Scenario
from .truth import OPEN, VANISHED, Truth

CLIENT, SYNC, DELIVER, FAULT_ON, FAULT_OFF, SAMPLE, QUIESCE, HEARTBEAT, END = range(9)
DEADLINE, PROBE, DOUBT, IDLE = 9, 10, 11, 12  # request replicas only
READ_REQUEST, PROBE_REQUEST = -1, -2  # what a pending request is, besides a ClientOp
KINDS = {ClientOp.LOGIN: "login", ClientOp.LOGOUT: "logout", ClientOp.HEARTBEAT: "heartbeat"}


def spec_distance(value: int, low: int, high: int) -> int:
    """How far ``value`` lies outside ``[low, high]``, signed (0 inside)."""
    if value > high:
        return value - high
    if value < low:
        return value - low
    return 0


class Applied:
    """A scenario fault as this run applies it (its partition sides resolved)."""

    __slots__ = ("end", "fault", "links", "sides", "start")

    def __init__(self, fault: Fault, stop: float, nodes: int, rng: random.Random) -> None:
        self.fault = fault
        self.start = fault.start
        self.end = stop if fault.end is None else min(fault.end, stop)
        self.sides: list[list[int]] = []
        self.links: list[tuple[int, int]] = []
        if isinstance(fault, PartitionFault):
            self.sides = fault.sides(nodes, rng)
            self.links = fault.cut_links(self.sides)

    @property
    def applied(self) -> bool:
        return self.start < self.end

    def describe(self) -> dict[str, Any]:
        data = self.fault.to_dict()
        data["applied"] = self.applied
        data["window"] = [self.start, self.end] if self.applied else None
        if self.sides:
            data["sides"] = self.sides
        return data


class Simulation:
    """One run. Build it, call :meth:`run` once; the report is built by ``runner``."""

    def __init__(
        self,
        strategy: Replicable,
        scenario: Scenario,
        keep_trace: bool = True,
        history: History | None = None,
    ) -> None:
        sc = self.sc = scenario.validate()
        self.strategy = strategy
        n = self.n = sc.nodes
        seeds = Seeds(sc.seed)
        self.schedule = client_schedule(sc, seeds.child("workload"), seeds.child("clients"))
        self.net = Network(n, sc.latency, sc.jitter, seeds.child("network"))
        self.peers = [[d for d in range(n) if d != src] for src in range(n)]
        self.fanout = sc.gossip
        self.gossip = seeds.child("gossip")
        self.stop = self.schedule.end
        self.end = self.stop + sc.quiescence
        sc.check_periodic(self.end)
        faults_rng = seeds.child("faults")
        self.applied = [Applied(f, self.stop, n, faults_rng) for f in sc.faults]
        self.replicas: list[Replica] = [strategy.replica(i) for i in range(n)]
        self.invalid: list[str] = []  # absurd counts, described (the first few)
        self.invalid_count = 0
        self.counts = [self._count(i, 0.0) for i in range(n)]
        self.down = [0] * n
        self.lose_state = [False] * n
        self.active: list[int] = []
        self.truth = Truth(sc.users, sc.session_timeout)
        self.spec: Specification = getattr(strategy, "specification", SESSIONS)
        self.allowed = Allowed(self.spec, sc.users, sc.session_timeout)
        # The operation history, when one is kept (``hist_ids``: request id -> its index).
        self.hist = history
        self.hist_ids: dict[int, int] = {}
        # per origin incarnation (see Knowledge.origin): (login?, user, time, history
        # index or -1) per change
        self.changes: dict[int, list[tuple[bool, int, float, int]]] = {}
        self.survive: dict[int, int] = {}  # origin -> changes not (yet) lost, a prefix
        self.lost_changes = 0
        self.know = Knowledge(n)
        self.names = [user_name(u) for u in range(sc.users)]
        self.trace = Trace(keep_trace)
        self.queue = EventQueue()
        self.quiet = False
        self.watches: list[Watch] = []  # heal watches, in heal order
        self.quiet_watch: Watch | None = None
        self.agree_since: float | None = None
        self.truth_since: float | None = None
        # metrics
        self.err = {"all": ErrorAccumulator(), "fault": ErrorAccumulator()}
        self.err["healthy"] = ErrorAccumulator()
        if self.schedule.windows:  # the samples in a shaped scenario's windows
            self.err["shaped"] = ErrorAccumulator()
        self.read_err = ErrorAccumulator()
        # the same, against the values the specification allows (0 inside them)
        self.spec_err = ErrorAccumulator()
        self.spec_read_err = ErrorAccumulator()
        self.allowed_since: float | None = None
        # value staleness (see metrics): ages of sampled counts and of read values
        self.ages = ValueAges()
        self.sample_ages: list[float] = []
        self.read_ages: list[float] = []
        self.never_allowed = [0, 0]  # samples, reads whose value was never allowed
        # counts above what any subset of the accepted operations gives (see _ceiling)
        self.beyond = 0
        self.beyond_worst: tuple[int, int, int, float] | None = None  # excess, node, value, t
        # quiescence: the allowed values last seen, and when they last moved (sessions
        # expiring, or opened again by a heartbeat)
        self.quiet_bounds = (-1, -1)
        self.bounds_moved = 0.0
        self.final_bounds = (0, 0)
        self.timeline: list[int] = []
        self.timeline_fault: list[bool] = []
        # per node, per grid sample: count - truth, None while the node is down
        self.timeline_nodes: list[list[int | None]] = [[] for _ in range(n)]
        self.ops = dict.fromkeys(("login", "logout", "heartbeat", "read", "vanish"), 0)
        self.accepted = [0, 0]  # logins, logouts
        self.rejected = self.reads_rejected = self.quiet_heartbeats = 0
        self.net_count = dict.fromkeys(
            ("messages", "bytes", "total", "delivered", "dup", "lost", "cut", "down"), 0
        )
        self.meta_sum = self.meta_max = self.meta_n = 0
        self.final_values: list[int] = []
        self.in_flight = 0
        # request replicas: pending requests, and which users' state may differ from the
        # truth (an operation of theirs in flight, or one that failed: see _doubt)
        self.requests = isinstance(self.replicas[0], RequestReplica)
        # request id -> node, what, user, truth, allowed low and high, spec expiries,
        # users in doubt, entries into doubt (all at the start), start time
        self.pending: dict[int, tuple[int, int, int, int, int, int, int, int, int, float]] = {}
        self.next_request = 0
        self.outstanding = [0] * sc.users
        self.tainted = [False] * sc.users
        self.touched = [0.0] * sc.users  # client time of the last acknowledged touch
        self.touches = [0] * sc.users  # acknowledged touches so far
        self.attempts = [0] * sc.users  # writes sent so far (answered or not)
        self.intent: list[ClientOp | None] = [None] * sc.users  # latest login or logout
        self.retries = 0  # logins and logouts sent again at quiescence (see _reassert)
        # a login or logout of the user was sent while another was in flight: the order in
        # which they took effect is unknown (see _answer)
        self.overlap = [False] * sc.users
        self.last_attempt = [0.0] * sc.users  # client time of the latest one
        self.sessions = self.spec.counts is Counts.SESSIONS
        self.doubtful = self.doubt_entries = 0
        self.reads_partial = self.probe_reads = self.wrong_reads = self.wrong_by = 0

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        q, sc = self.queue, self.sc
        if len(self.schedule):
            q.push(self.schedule.times[0], CLIENT, 0)
        else:  # pragma: no cover - operations >= 1 is validated
            q.push(0.0, QUIESCE)
        for i, a in enumerate(self.applied):
            if a.applied:
                q.push(a.start, FAULT_ON, i)
                if a.end < self.stop:
                    q.push(a.end, FAULT_OFF, i)
        for node in range(self.n):
            q.push(sc.sync_interval * (node + 1) / self.n, SYNC, node, 0)
        if sc.sample_interval <= self.stop:
            q.push(sc.sample_interval, SAMPLE, 1)
        q.push(self.end, END)
        advance, settle = self.truth.advance, self.allowed.advance
        while q:
            t, _, kind, arg, payload = q.pop()
            advance(t)
            settle(t)
            if kind == DELIVER:
                self._deliver(t, arg, payload)
            elif kind == CLIENT:
                self._client(t, arg)
            elif kind == SYNC:
                self._sync(t, arg, payload)
            elif kind == SAMPLE:
                self._sample(t, arg)
            elif kind == HEARTBEAT:
                self._heartbeat(t, arg)
            elif kind == FAULT_ON:
                self._fault_on(t, arg)
            elif kind == FAULT_OFF:
                self._fault_off(t, arg, watch=True)
            elif kind == QUIESCE:
                self._quiesce(t)
            elif kind == DEADLINE:
                self._deadline(t, arg)
            elif kind == PROBE:
                self._probe(t)
            elif kind == DOUBT:
                self._expirable(t, arg, payload)
            elif kind == IDLE:
                self._idle(arg, payload)
            else:
                self._finish(t)
                break

    def _count(self, node: int, t: float) -> int:
        """``count(t)`` of a node, checked: a value that is not a whole number, or beyond
        ±COUNT_LIMIT, is recorded as a violation (a line for the verdict) and replaced by
        the nearest valid value, so no metric overflows."""
        value = self.replicas[node].count(t)
        if type(value) is int and -COUNT_LIMIT <= value <= COUNT_LIMIT:
            return value
        return self._absurd(node, t, value)

    def _absurd(self, node: int, t: float, value: object) -> int:
        fixed, why = checked_count(value)
        if why:
            self.invalid_count += 1
            if len(self.invalid) < 3:
                self.invalid.append(f"node {node} counted {shown(value)} at {t:.6g}s ({why})")
        return fixed

    # -- clients --------------------------------------------------------------------------

    def _client(self, t: float, i: int) -> None:
        sched, trace = self.schedule, self.trace.lines
        kind, target = sched.kinds[i], sched.targets[i]
        if kind is ClientOp.READ:
            self.ops["read"] += 1
            if self.down[target]:
                self.reads_rejected += 1
                self.rejected += 1
                trace.append(f"{t!r} r n{target} down")
                self._record(t, f"reader{target}", target, "read", None, "fail")
            elif self.requests:
                rid = self._request(t, target, READ_REQUEST, -1, "count")
                trace.append(f"{t!r} r n{target} #{rid}")
                self._poll(t, target)
            else:
                value = self._count(target, t)
                self.counts[target] = value
                self.read_err.add(value - self.truth.online)
                low, high = self.allowed.bounds()
                off = spec_distance(value, low, high)
                self.spec_read_err.add(off)
                self._age(t, value, low, high, self.read_ages, 1)
                if value > (ceiling := self._ceiling()):
                    self._beyond(t, target, value, ceiling)
                trace.append(f"{t!r} r n{target} {value}")
                index = self._record(t, f"reader{target}", target, "read", None, "ok", value)
                if self.hist is not None:
                    self.hist.judged[index] = off != 0
        elif kind is ClientOp.VANISH:
            self.ops["vanish"] += 1
            self.truth.vanish(target, t)
            trace.append(f"{t!r} v u{target}")
            if self.hist is not None:
                self.hist.event("vanish", t, user=self.names[target])
        else:
            self._user_op(t, kind, target)
        if i + 1 < len(sched):
            self.queue.push(sched.times[i + 1], CLIENT, i + 1)
        else:
            self.queue.push(t, QUIESCE)

    def _user_op(self, t: float, kind: ClientOp, user: int) -> None:
        node = user % self.n
        truth = self.truth
        if kind is not ClientOp.HEARTBEAT:
            self.intent[user] = kind
        if kind is ClientOp.LOGIN:
            self.ops["login"] += 1
            truth.login(user, t)
        elif kind is ClientOp.LOGOUT:
            self.ops["logout"] += 1
            truth.logout(user, t)
        else:
            self.ops["heartbeat"] += 1
            truth.heartbeat(user, t)
        if self.requests:
            self._attempt(t, user)
        if self.down[node]:  # certainly not applied: not in the accepted history
            self.rejected += 1
            self.trace.lines.append(f"{t!r} c{int(kind)} u{user} n{node} down")
            name = self.names[user]
            self._record(t, name, node, KINDS[kind], name, "fail")
            return
        if self.requests:
            rid = self._request(t, node, int(kind), user, KINDS[kind])
            self.trace.lines.append(f"{t!r} c{int(kind)} u{user} n{node} #{rid}")
            self._poll(t, node)
            return
        replica, name = self.replicas[node], self.names[user]
        index = self._record(t, name, node, KINDS[kind], name, "ok")
        if kind is ClientOp.LOGIN:
            replica.login(name, t)
            self.accepted[0] += 1
            self._change(node, True, user, t, index)
            self.allowed.login(user, t)
        elif kind is ClientOp.LOGOUT:
            replica.logout(name, t)
            self.accepted[1] += 1
            self._change(node, False, user, t, index)
            self.allowed.logout(user, t)
        else:
            replica.heartbeat(name, t)
            self.allowed.heartbeat(user, t)
        self.ages.note(t, *self.allowed.bounds())
        self.counts[node] = self._count(node, t)
        self.trace.lines.append(f"{t!r} c{int(kind)} u{user} n{node} {self.counts[node]}")

    def _change(self, node: int, login: bool, user: int, t: float, index: int) -> None:
        """A login or logout accepted by ``node``: known to it, logged under its
        incarnation (what a restart without state may lose, see ``_restart``)."""
        key = self.know.origin(node)
        log = self.changes.get(key)
        if log is None:
            log = self.changes[key] = []
        log.append((login, user, t, index))
        self.know.accept(node, t)

    def _record(
        self,
        t: float,
        process: str,
        node: int,
        kind: str,
        user: str | None,
        outcome: str,
        value: int | None = None,
    ) -> int:
        """An operation that finished at once (invoke and complete at ``t``), in the
        history when one is kept; its index there, or -1."""
        if self.hist is None:
            return -1
        index = self.hist.invoke(t, process, node, kind, user)
        self.hist.complete(index, t, outcome, value)
        return index

    def _heartbeat(self, t: float, user: int) -> None:
        """Quiescence: an online user's heartbeat, every heartbeat_interval until ``end``."""
        if self.truth.state[user] != OPEN:  # pragma: no cover - no logout in quiescence
            return
        self.truth.heartbeat(user, t)
        node = user % self.n
        replica = self.replicas[node]
        self.quiet_heartbeats += 1
        if self.requests:
            self._attempt(t, user)
            rid = self._request(t, node, int(ClientOp.HEARTBEAT), user, "heartbeat")
            self.trace.lines.append(f"{t!r} h u{user} n{node} #{rid}")
            self._poll(t, node)
        else:
            name = self.names[user]
            self._record(t, name, node, "heartbeat", name, "ok")
            replica.heartbeat(name, t)
            self.allowed.heartbeat(user, t)
            self.counts[node] = self._count(node, t)
            self.trace.lines.append(f"{t!r} h u{user} n{node} {self.counts[node]}")
        following = t + self.sc.heartbeat_interval
        if following < self.end:
            self.queue.push(following, HEARTBEAT, user)
        self._check_quiet(t)

    # -- replicas and network -------------------------------------------------------------

    def _sync(self, t: float, node: int, k: int) -> None:
        following = self.sc.sync_interval * (node + 1) / self.n + (k + 1) * self.sc.sync_interval
        if following < self.end:
            self.queue.push(following, SYNC, node, k + 1)
        if self.down[node]:
            return
        messages = self.replicas[node].sync(t)
        size = sum(len(m.body) for m in messages)
        self.meta_sum += size
        self.meta_n += 1
        self.meta_max = max(self.meta_max, size)
        self.trace.lines.append(f"{t!r} s n{node} {len(messages)} {size}")
        if messages:
            self._send(t, node, messages)

    def _send(self, t: float, src: int, messages: list[Message]) -> None:
        vector = self.know.snapshot(src)
        route, push, lines = self.net.route, self.queue.push, self.trace.lines
        count = self.net_count
        in_phase = not self.quiet
        for message in messages:
            dst = message.dst
            if dst is not None:
                targets = [dst]
            elif self.fanout is None:
                targets = self.peers[src]
            else:
                targets = self.gossip.sample(self.peers[src], self.fanout)
            size = len(message.body)
            for d in targets:
                count["total"] += 1
                if in_phase:
                    count["messages"] += 1
                    count["bytes"] += size
                if not 0 <= d < self.n:
                    count["lost"] += 1
                    lines.append(f"{t!r} m {src}>{d} {size} misaddressed")
                    continue
                outcome, delays = route(src, d)
                if outcome == "cut" or outcome == "lost":
                    count[outcome] += 1
                elif outcome == "dup":
                    count["dup"] += len(delays) - 1
                lines.append(f"{t!r} m {src}>{d} {size} {outcome}")
                for delay in delays:
                    push(t + delay, DELIVER, d, (message, vector))

    def _deliver(self, t: float, dst: int, payload: tuple[Message, dict[int, int]]) -> None:
        message, vector = payload
        src = message.src
        if self.down[dst]:
            self.net_count["down"] += 1
            self.trace.lines.append(f"{t!r} d {src}>{dst} down")
            return
        if self.net.cut(src, dst):
            self.net_count["cut"] += 1
            self.trace.lines.append(f"{t!r} d {src}>{dst} cut")
            return
        self.net_count["delivered"] += 1
        replica = self.replicas[dst]
        replies = replica.receive(message, t)
        if message.informs:
            self.know.receive(dst, vector, t, self._open_watches)
        if self.requests:
            self.trace.lines.append(f"{t!r} d {src}>{dst}")
            if replies:
                self._send(t, dst, replies)
            self._poll(t, dst)
            if self.quiet:
                self._check_quiet(t)
            return
        self.counts[dst] = value = self._count(dst, t)
        self.trace.lines.append(f"{t!r} d {src}>{dst} {value}")
        if replies:
            self._send(t, dst, replies)
        if self.quiet:
            self._check_quiet(t)

    # -- faults ---------------------------------------------------------------------------

    def _fault_on(self, t: float, i: int) -> None:
        a = self.applied[i]
        self.active.append(i)
        for w in self.watches:
            w.sampling = False
        fault = a.fault
        if isinstance(fault, PartitionFault):
            self.net.block(a.links, 1)
        elif isinstance(fault, CrashFault):
            node = fault.node
            self.down[node] += 1
            self.lose_state[node] |= not fault.persist
            if self.down[node] == 1:
                self.know.crash(node, t, self._open_watches())
        else:
            self.net.add(fault)
        self.trace.lines.append(f"{t!r} f+ {i} {fault.label()}")
        if self.hist is not None:
            self.hist.event("fault", t, event="start", fault=fault.label(), index=i)

    def _fault_off(self, t: float, i: int, watch: bool) -> None:
        a = self.applied[i]
        self.active.remove(i)
        fault = a.fault
        if isinstance(fault, PartitionFault):
            self.net.block(a.links, -1)
        elif isinstance(fault, CrashFault):
            node = fault.node
            self.down[node] -= 1
            if self.down[node] == 0:
                self._restart(t, node)
        else:
            self.net.remove(fault)
        self.trace.lines.append(f"{t!r} f- {i} {fault.label()}")
        if self.hist is not None:
            self.hist.event("fault", t, event="end", fault=fault.label(), index=i)
        if watch:
            self.watches.append(self.know.watch(fault.label(), t))

    def _restart(self, t: float, node: int) -> None:
        lost = self.lose_state[node]
        self.lose_state[node] = False
        if self.hist is not None:
            self.hist.event("restart", t, node=node, state="lost" if lost else "kept")
        if lost and not self.requests:
            self._lose(t, node)
        if lost:
            self.replicas[node] = self.strategy.replica(node)
        self.know.restart(node, lost, self._open_watches())
        if not self.requests:  # a request replica's count is its last read's value
            self.counts[node] = self._count(node, t)
        self.trace.lines.append(f"{t!r} up n{node} {'empty' if lost else 'persisted'}")

    def _lose(self, t: float, node: int) -> None:
        """``node`` restarts without its state: every change that no other node knows of
        (by the knowledge its messages carried) may be lost, and is indeterminate from now
        on (see :mod:`.allowed`)."""
        known = self.know.known
        others = [k for m, k in enumerate(known) if m != node]
        for key in known[node]:
            kept = max((k.get(key, 0) for k in others), default=0)
            survive = self.survive.get(key, len(self.changes.get(key, ())))
            if kept >= survive:
                continue
            for login, user, at, index in self.changes[key][kept:survive]:
                self.allowed.lost(login, user, at)
                self.lost_changes += 1
                if self.hist is not None:
                    self.hist.event("lost", t, op=index)
            self.survive[key] = kept

    def _open_watches(self) -> list[Watch]:
        watches = [w for w in self.watches if w.drained_after is None]
        if self.quiet_watch is not None and self.quiet_watch.drained_after is None:
            watches.append(self.quiet_watch)
        return watches

    # -- sampling, quiescence, end --------------------------------------------------------

    def _sample(self, t: float, k: int) -> None:
        truth = self.truth.online
        faulty = bool(self.active)
        window = self.err["fault" if faulty else "healthy"]
        every = self.err["all"]
        # In a shaped window the error is against the users really online (a vanished
        # user off at once, as the run's scenario error), not the truth's sessions.
        shaped = next(
            (self.err["shaped"] for _, low, high in self.schedule.windows if low <= t <= high),
            None,
        )
        really = truth - self.truth.pending
        worst = 0
        live: list[int] = []
        series = self.timeline_nodes
        low, high = self._bounds()
        spec_err = self.spec_err
        ages = self.sample_ages
        ceiling = self._ceiling()
        for node in range(self.n):
            if self.down[node]:
                series[node].append(None)
                continue
            if self.requests:
                value = self.counts[node]
            else:
                value = self.counts[node] = self._count(node, t)
            live.append(value)
            error = value - truth
            series[node].append(error)
            window.add(error)
            every.add(error)
            if shaped is not None:
                shaped.add(value - really)
            spec_err.add(spec_distance(value, low, high))
            self._age(t, value, low, high, ages, 0)
            if value > ceiling:
                self._beyond(t, node, value, ceiling)
            if abs(error) > worst:
                worst = abs(error)
        self.timeline.append(worst)
        self.timeline_fault.append(faulty)
        self.trace.lines.append(f"{t!r} g {truth} {live}")
        if live:
            agree = min(live) == max(live)
            for w in self.watches:
                if w.sampling and w.agree_after is None and agree:
                    w.agree_after = t - w.healed_at
                if w.sampling and w.truth_after is None and agree and live[0] == truth:
                    w.truth_after = t - w.healed_at
                inside = agree and low <= live[0] <= high
                if w.sampling and w.allowed_after is None and inside:
                    w.allowed_after = t - w.healed_at
        following = (k + 1) * self.sc.sample_interval
        if following <= self.stop:
            self.queue.push(following, SAMPLE, k + 1)

    def _quiesce(self, t: float) -> None:
        """Clients stop; every fault ends; online users keep heartbeating until ``end``."""
        for w in self.watches:
            w.sampling = False
        for i in list(self.active):
            self._fault_off(t, i, watch=False)
        self.quiet = True
        self.trace.lines.append(f"{t!r} quiesce")
        self.quiet_watch = self.know.watch("quiescence", t)
        hb = self.sc.heartbeat_interval
        for user in self.truth.open_users():
            following = max(t, self.truth.last_seen[user] + hb)
            if following < self.end:
                self.queue.push(following, HEARTBEAT, user)
        if self.requests:
            self._reassert(t)
            self._probe(t)
        else:
            self.counts = [self._count(i, t) for i in range(self.n)]
        self._check_quiet(t)

    def _reassert(self, t: float) -> None:
        """Request replicas, when the faults end: a client whose login or logout got no
        answer sends it again (as a client reconnecting would), so the users' state is known
        again for the final counts. A user who vanished sends nothing."""
        for user, kind in enumerate(self.intent):
            if kind is None or not self.tainted[user] or self.outstanding[user]:
                continue
            if self.truth.state[user] == VANISHED:
                continue
            self.retries += 1
            node = user % self.n
            self._attempt(t, user)
            rid = self._request(t, node, int(kind), user, KINDS[kind])
            self.trace.lines.append(f"{t!r} again c{int(kind)} u{user} n{node} #{rid}")
            self._poll(t, node)

    def _check_quiet(self, t: float) -> None:
        counts = self.counts
        agree = min(counts) == max(counts)
        if not agree and not self.requests:
            # The cached counts were each read at that node's last event; a count that
            # changes with time alone (leases expiring) must be compared at one instant.
            counts = [self._count(i, t) for i in range(self.n)]
            agree = min(counts) == max(counts)
        low, high = self._bounds()
        if (low, high) != self.quiet_bounds:
            self.quiet_bounds = (low, high)
            self.bounds_moved = t
        if not agree:
            self.agree_since = self.truth_since = self.allowed_since = None
            return
        if self.agree_since is None:
            self.agree_since = t
        if not low <= counts[0] <= high:
            self.allowed_since = None
        elif self.allowed_since is None:
            self.allowed_since = t
        if counts[0] != self.truth.online:
            self.truth_since = None
        elif self.truth_since is None:
            self.truth_since = t

    def _age(self, t: float, value: int, low: int, high: int, into: list[float], kind: int) -> None:
        """Record how long ago ``value`` was last allowed (see :class:`ValueAges`)."""
        ages = self.ages
        ages.note(t, low, high)
        if low <= value <= high:
            into.append(0.0)
            return
        age = ages.age(t, value)
        if age is None:
            self.never_allowed[kind] += 1
        else:
            into.append(age)

    def _ceiling(self) -> int:
        """No correct count, however stale or partial, exceeds this: the most any subset
        of the accepted operations gives, plus (request replicas) the users in doubt."""
        return self.allowed.ceiling() + (self.doubtful if self.requests else 0)

    def _beyond(self, t: float, node: int, value: int, ceiling: int) -> None:
        self.beyond += 1
        worst = self.beyond_worst
        if worst is None or value - ceiling > worst[0]:
            self.beyond_worst = (value - ceiling, node, value, t)

    def _bounds(self) -> tuple[int, int]:
        """The values the specification allows now; for request replicas widened by the
        users in doubt (an operation of theirs in flight or failed, see ``_doubt``)."""
        low, high = self.allowed.bounds()
        if self.requests:
            return max(0, low - self.doubtful), high + self.doubtful
        return low, high

    def _finish(self, t: float) -> None:
        if self.requests:
            self.final_values = list(self.counts)
        else:
            self.final_values = [self._count(i, t) for i in range(self.n)]
        self.counts = list(self.final_values)
        self.final_bounds = self._bounds()
        if self.hist is not None:
            for node, value in enumerate(self.final_values):
                self.hist.event("final", t, node=node, value=value)
        self._check_quiet(t)
        self.in_flight = self.queue.pending(DELIVER)
        self.trace.lines.append(f"{t!r} end {self.truth.online} {self.final_values}")

    # -- request replicas -----------------------------------------------------------------

    def _replica(self, node: int) -> RequestReplica:
        replica = self.replicas[node]
        assert isinstance(replica, RequestReplica)
        return replica

    def _request(self, t: float, node: int, what: int, user: int, kind: str) -> int:
        """Start one request at ``node`` (the caller polls); its id."""
        rid = self.next_request
        self.next_request += 1
        low, high = self.allowed.bounds()
        self.pending[rid] = (
            node,
            what,
            user,
            self.truth.online,
            low,
            high,
            self.allowed.expired,
            self.doubtful,
            self.doubt_entries,
            t,
        )
        if what == ClientOp.LOGIN or what == ClientOp.LOGOUT:
            if self.outstanding[user]:  # overlapping: they may take effect in either order
                self.overlap[user] = True
            self._doubt(user, 1, None)
        if self.hist is not None:
            name = self.names[user] if user >= 0 else None
            process = name or ("probe" if what == PROBE_REQUEST else f"reader{node}")
            read = "read" if kind == "count" else kind
            self.hist_ids[rid] = self.hist.invoke(t, process, node, read, name)
        replica = self._replica(node)
        replica.request(rid, kind, self.names[user] if user >= 0 else "", t)
        self.queue.push(t + replica.request_timeout, DEADLINE, rid)
        return rid

    def _poll(self, t: float, node: int) -> None:
        messages, answers = self._replica(node).poll(t)
        if messages:
            self._send(t, node, messages)
        for answer in answers:
            self._answer(t, answer)

    def _deadline(self, t: float, rid: int) -> None:
        entry = self.pending.get(rid)
        if entry is None:
            return
        if not self.down[entry[0]]:
            self._poll(t, entry[0])
        if rid in self.pending:  # its node is down, or lost it in a restart: no answer
            self._answer(t, Answer(rid, False))

    def _answer(self, t: float, answer: Answer) -> None:
        entry = self.pending.pop(answer.request_id, None)
        if entry is None:  # finished already (e.g. by the engine at its deadline)
            return
        node, what, user, online, low, high, expired, doubtful, entries, start = entry
        lines = self.trace.lines
        rid = answer.request_id
        if self.hist is not None:
            ok = answer.ok and (what >= 0 or answer.value is not None)
            value = answer.value if ok and what < 0 else None
            index = self.hist_ids.pop(rid)
            self.hist.complete(index, t, "ok" if ok else "info", value, answer.partial and ok)
        else:
            index = -1
        if what >= 0:  # a write
            kind = ClientOp(what)
            if answer.ok:
                self.touched[user] = start
                self.touches[user] += 1
                if kind is ClientOp.LOGIN:
                    self.allowed.login(user, start)
                elif kind is ClientOp.LOGOUT:
                    self.allowed.logout(user, start)
                else:
                    self.allowed.heartbeat(user, start)
                self.ages.note(t, *self._bounds())
                if kind is not ClientOp.HEARTBEAT:
                    self.accepted[what] += 1
                    overlapped = self.overlap[user]
                    self._doubt(user, -1, overlapped)
                    if overlapped:
                        self._idle_check(t, user)
            else:
                self.rejected += 1
                if kind is ClientOp.HEARTBEAT:
                    self._failed(t, kind, user)
                else:  # no longer in flight, in doubt from now on: one entry into doubt
                    self._doubt(user, -1, True)
                    self._idle_check(t, user)
            lines.append(f"{t!r} a #{rid} {'ok' if answer.ok else 'failed'}")
            return
        value = answer.value
        if not answer.ok or value is None:
            if what == READ_REQUEST:
                self.reads_rejected += 1
                self.rejected += 1
            lines.append(f"{t!r} a #{rid} failed")
            return
        if type(value) is not int or not -COUNT_LIMIT <= value <= COUNT_LIMIT:
            value = self._absurd(node, t, value)
        self.counts[node] = value
        off = spec_distance(value, low, high)
        if what == READ_REQUEST:
            self.read_err.add(value - online)
            self.spec_read_err.add(off)
            self._age(t, value, *self._bounds(), self.read_ages, 1)
            self.reads_partial += answer.partial
        else:
            self.probe_reads += 1
        if value > (ceiling := self._ceiling()):
            self._beyond(t, node, value, ceiling)
        # Users whose state at the nodes may differ from what the specification gives
        # during the read: in doubt at its start, or entering doubt (an operation, an
        # expiry) until now.
        excuse = doubtful + self.doubt_entries - entries + self.allowed.expired - expired
        excess = abs(off) - excuse
        if self.hist is not None:
            self.hist.judged[index] = excess > 0
        if excess > 0:
            self.wrong_reads += 1
            self.wrong_by = max(self.wrong_by, excess)
        lines.append(f"{t!r} a #{rid} {value}{' partial' if answer.partial else ''}")
        if self.quiet:
            self._check_quiet(t)

    def _doubt(self, user: int, outstanding: int, taint: bool | None) -> None:
        """See below; a user's logins/logouts stop overlapping once none is in flight."""
        self._set_doubt(user, outstanding, taint)
        if not self.outstanding[user]:
            self.overlap[user] = False

    def _set_doubt(self, user: int, outstanding: int, taint: bool | None) -> None:
        """Update whether ``user``'s state at the nodes may differ from what the
        specification gives: while a login or logout of theirs is in flight, and from one
        that got no answer (its effect unknown), or a session the server may expire for
        lack of answered heartbeats, or two that overlapped (either order may have taken
        effect), until a login or logout of theirs that overlapped none is acknowledged
        (or, see ``_idle``, the user has been silent for a session timeout)."""
        before = self.outstanding[user] > 0 or self.tainted[user]
        self.outstanding[user] += outstanding
        if taint is not None:
            self.tainted[user] = taint
        after = self.outstanding[user] > 0 or self.tainted[user]
        if after and not before:
            self.doubtful += 1
            self.doubt_entries += 1
        elif before and not after:
            self.doubtful -= 1

    def _failed(self, t: float, kind: ClientOp, user: int) -> None:
        """A user's operation failed (rejected, or no answer): a login or logout puts the
        user in doubt at once; a heartbeat once the server could expire the session, a
        session timeout after the user's last acknowledged touch (unless one comes)."""
        if kind is not ClientOp.HEARTBEAT:
            self._doubt(user, 0, True)
            return
        at = max(t, self.touched[user] + self.sc.session_timeout)
        self.queue.push(at, DOUBT, user, self.touches[user])

    def _expirable(self, t: float, user: int, touches: int) -> None:
        if self.touches[user] == touches:  # no acknowledged touch since the failure
            self._doubt(user, 0, True)
            self._idle_check(t, user)

    def _attempt(self, t: float, user: int) -> None:
        """A write of ``user``'s is sent (whatever becomes of it)."""
        self.attempts[user] += 1
        self.last_attempt[user] = t
        if self.tainted[user]:
            self._idle_check(t, user)

    def _idle_check(self, t: float, user: int) -> None:
        """Sessions: a user in doubt who sends nothing more for a session timeout (and a
        request's timeout) has no session left in any ordering of what they sent."""
        if self.sessions:
            wait = self.sc.session_timeout + self._replica(0).request_timeout
            at = max(t, self.last_attempt[user] + wait)
            self.queue.push(at, IDLE, user, self.attempts[user])

    def _idle(self, user: int, attempts: int) -> None:
        if self.attempts[user] == attempts and self.tainted[user] and not self.outstanding[user]:
            self._doubt(user, 0, False)

    def _probe(self, t: float) -> None:
        """Quiescence: read every live node (not a client read; no cost counted)."""
        timeout = self._replica(0).request_timeout
        if t + timeout >= self.end:  # its answer (or deadline) would come after the end
            return
        for node in range(self.n):
            if not self.down[node]:
                rid = self._request(t, node, PROBE_REQUEST, -1, "count")
                self.trace.lines.append(f"{t!r} p n{node} #{rid}")
                self._poll(t, node)
        self.queue.push(t + self.sc.sync_interval, PROBE)
