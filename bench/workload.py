"""Workloads: what the simulated users do, as deterministic per-worker operation streams.

Users alternate between offline and online periods (both exponentially distributed with
mean ``session_length``); while online they send a heartbeat every ``heartbeat_interval``.
One generator produces every user's events in virtual-time order; each user belongs to one
worker (``users[w::workers]``), so each worker replays its own users' events in order and
the truth at the end of the streams is exact whatever the interleaving of workers.

Times are virtual seconds, passed to the strategies as ``now``; the drivers shift them by
the stream's span on each repeated pass so time never runs backwards for a node.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..strategies.errors import UsageError


def merged_table(
    data: Mapping[str, Any], name: str, error: type[ValueError], path: Path | str
) -> dict[str, Any]:
    """The keys of a file given at top level and under its ``[name]`` table, together; a
    key given in both is refused (neither would be the obvious winner)."""
    if name not in data:
        return dict(data)
    inner = data[name]
    if not isinstance(inner, Mapping):
        raise error(f"{path}: [{name}] must be a table")
    outer = {key: value for key, value in data.items() if key != name}
    both = sorted(set(outer) & set(inner))
    if both:
        raise error(
            f"{path}: {', '.join(both)} given both at top level and under [{name}]; give each once"
        )
    return {**outer, **inner}


#: The largest workload or scenario file read.
MAX_TOML_BYTES = 1 << 20
#: Limits of a workload, the same for every command (stated in the README).
MAX_USERS = 20_000_000
MAX_NODES = 5_000
MAX_WORKERS = 512
MAX_PASS_OPERATIONS = 10_000_000  # operations x workers: each is kept in memory
WHOLE_LIMITS = {
    "users": MAX_USERS,
    "operations": MAX_PASS_OPERATIONS,
    "nodes": MAX_NODES,
    "workers": MAX_WORKERS,
    "sync_every": MAX_PASS_OPERATIONS,
    "pipeline": 100_000,
}
MIN_SECONDS = 0.001
MAX_SECONDS = 1e9  # about 32 years


class SpecError(ValueError, UsageError):
    """A workload that cannot run, with a message fit for one line on stderr."""


def load_toml(path: Path, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The TOML file ``path`` (a ``what`` file, at most :data:`MAX_TOML_BYTES`); a missing,
    unreadable, oversized or invalid file raises ``error`` with a one-line message."""
    from ..reports.load import read_input

    data = read_input(path, f"{what} file", MAX_TOML_BYTES, error)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(f"{what} file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} file {path} is not valid TOML: {exc}") from None


class Op(IntEnum):
    LOGIN = 0
    LOGOUT = 1
    HEARTBEAT = 2
    READ = 3
    SYNC = 4  # not a client operation: the worker's node syncs with the others here
    #: Not sent to any node: the user is gone without logging out (a shaped scenario's
    #: disconnect); only the truth sees it.
    VANISH = 5


WRITES = frozenset({Op.LOGIN, Op.LOGOUT})


SHAPE_KINDS = ("storm", "disconnect", "churn", "skew", "daily")


@dataclass(frozen=True, slots=True)
class Shape:
    """A moment of a shaped scenario; ``at``, ``duration`` and ``spread`` are fractions of
    the pass's span (0 is its start, 1 the time of its last operation without shapes).

    ``storm``: ``share`` of the users offline at ``at`` log in, at even times over the next
    ``duration``, each then going on as any user (heartbeats, a logout when the session
    ends). ``disconnect``: at ``at``, ``share`` of the users online vanish without logging
    out (a gateway crash: their nodes hear nothing more from them), and each logs in again
    ``duration`` later, the reconnects spread evenly over ``spread`` more. ``churn``: from
    ``at`` for ``duration``, ``share`` of the users online at ``at`` have sessions and
    offline gaps ``factor`` times the usual (0.02: a fiftieth), so they log out and in
    again and again. ``skew``: from ``at`` for ``duration``, ``share`` of all the users,
    ranked at random, are active by Zipf's law with exponent ``factor``: the user of rank
    r heartbeats and reconnects as if (r ** -factor) times as busy as the mean of them,
    so a few users send most of it (their mean rate unchanged). ``daily``: from ``at`` for
    ``duration``, ``share`` of all the users have offline gaps that follow a day's curve:
    ``factor`` times the usual at the middle of the window (0.1: they come back ten times
    sooner, so the population online rises to a peak, then falls back), the usual at its
    ends (a half sine between). Where churn, skew or daily shapes overlap on a user, the
    later one's factor holds, and each ends at its own end."""

    kind: str
    at: float
    duration: float
    share: float
    spread: float = 0.0
    factor: float = 1.0

    def validate(self) -> Shape:
        if self.kind not in SHAPE_KINDS:
            raise SpecError(
                f"a shape's kind must be one of {', '.join(SHAPE_KINDS)}, got {self.kind!r}"
            )
        for name in ("at", "duration", "share", "spread", "factor"):
            value = getattr(self, name)
            top = {"share": 1.0, "factor": MAX_SHAPE_FACTOR}.get(name, MAX_SHAPE_SPAN)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= top
            ):
                raise SpecError(f"a {self.kind}'s {name} must be from 0 to {top:g}, got {value!r}")
        if self.at >= 1:
            raise SpecError(
                f"a {self.kind} must start within the pass (at below 1), got {self.at!r}"
            )
        if self.factor < MIN_SHAPE_FACTOR:
            raise SpecError(
                f"a {self.kind}'s factor must be at least {MIN_SHAPE_FACTOR:g}, got {self.factor!r}"
            )
        return self

    def window(self, span: float) -> tuple[float, float]:
        """The virtual seconds it shapes, for a pass of ``span`` seconds."""
        return self.at * span, (self.at + self.duration + self.spread) * span

    @classmethod
    def from_dict(cls, data: Any) -> Shape:
        if not isinstance(data, Mapping):
            raise SpecError(f"a shape must be a table, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown shape field(s): {', '.join(map(str, unknown))}")
        missing = sorted(known - {"spread", "factor"} - set(data))
        if missing:
            raise SpecError(f"a shape needs {', '.join(missing)}")
        return cls(**data).validate()


#: The latest a shape may reach, in spans of the pass.
MAX_SHAPE_SPAN = 10.0
#: The range of a churn's or a skew's ``factor``.
MIN_SHAPE_FACTOR = 1e-4
MAX_SHAPE_FACTOR = 100.0


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """Everything that defines a run's load. Echoed in every report."""

    users: int = 1000
    operations: int = 10_000  # client operations per worker in one pass
    read_ratio: float = 0.5  # share of reads (count) in the mixed workload
    session_length: float = 600.0  # mean seconds online, and mean seconds offline
    heartbeat_interval: float = 60.0
    session_timeout: float = 1800.0
    nodes: int = 3
    workers: int = 2
    sync_every: int = 1000  # client operations per worker between syncs of its node
    pipeline: int = 1  # operations a service client may batch into one round trip
    seed: int = 1
    #: Open loop: client operations a second over all workers that the verification pass
    #: is paced at (0: closed loop, each worker's next operation as soon as the last one
    #: answered), with Poisson or constant arrivals (see :class:`Arrivals`).
    rate: float = 0.0
    arrivals: str = "poisson"
    #: A shaped scenario: its name (echoed) and its moments (see :class:`Shape`).
    scenario: str = ""
    shapes: tuple[Shape, ...] = ()

    def validate(self) -> WorkloadSpec:
        for name, top in WHOLE_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise SpecError(f"{name} must be a whole number from 1 to {top:,}, got {value!r}")
        if self.operations * self.workers > MAX_PASS_OPERATIONS:
            raise SpecError(
                f"operations x workers is {self.operations * self.workers:,}: at most "
                f"{MAX_PASS_OPERATIONS:,} client operations per pass"
            )
        for name in ("session_length", "heartbeat_interval", "session_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool)) or not (
                MIN_SECONDS <= value <= MAX_SECONDS  # also false for NaN
            ):
                raise SpecError(
                    f"{name} must be from {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds, got {value!r}"
                )
        ratio = self.read_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise SpecError(f"read_ratio must be between 0 and 1, got {ratio!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SpecError(f"seed must be a whole number, got {self.seed!r}")
        if self.users < self.workers:
            raise SpecError(f"users ({self.users}) must be at least workers ({self.workers})")
        rate = self.rate
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not (rate == 0 or MIN_RATE <= rate <= MAX_RATE)  # also false for NaN
        ):
            raise SpecError(
                f"rate must be 0 (closed loop) or from {MIN_RATE:g} to {MAX_RATE:g} operations "
                f"a second, got {rate!r}"
            )
        if not isinstance(self.scenario, str) or not isinstance(self.shapes, tuple):
            raise SpecError("a scenario is a name and a tuple of shapes")
        for shape in self.shapes:
            if not isinstance(shape, Shape):
                raise SpecError(f"a shape must be a Shape, got {shape!r}")
            shape.validate()
        if bool(self.scenario) != bool(self.shapes):
            raise SpecError("a scenario needs a name and shapes (give --scenario NAME|FILE)")
        if self.shapes and self.read_ratio >= 1:
            raise SpecError("a scenario shapes the users' events: read_ratio 1 has none")
        if rate and self.operations * self.workers / rate > MAX_PACED_SECONDS:
            raise SpecError(
                f"rate {rate:g}: the paced pass of {self.operations * self.workers:,} "
                f"operations would last {self.operations * self.workers / rate:,.0f} s (at "
                f"most {MAX_PACED_SECONDS:,.0f}): raise the rate or lower the operations"
            )
        if self.arrivals not in ARRIVALS:
            raise SpecError(f"arrivals must be {' or '.join(ARRIVALS)}, got {self.arrivals!r}")
        if not rate and self.arrivals != "poisson":
            raise SpecError(f"arrivals {self.arrivals!r} needs a rate (an open loop)")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every field; ``rate`` and ``arrivals`` only for an open-loop workload (a closed
        loop's report reads as it did before they existed)."""
        fields_ = asdict(self)
        if not self.rate:
            del fields_["rate"], fields_["arrivals"]
        if self.shapes:
            fields_["shapes"] = [asdict(shape) for shape in self.shapes]
        else:
            del fields_["scenario"], fields_["shapes"]
        return fields_

    def arrivals_for(self, worker: int) -> Arrivals | None:
        """Worker ``worker``'s open-loop schedule (its share of ``rate``), or None for a
        closed loop."""
        if not self.rate:
            return None
        seed = f"{self.seed}:arrivals:{worker}"
        return Arrivals(self.rate / self.workers, self.arrivals == "poisson", seed)

    def with_overrides(self, overrides: Mapping[str, Any]) -> WorkloadSpec:
        """A copy with the given fields replaced (None values are ignored), validated."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SpecError(f"unknown workload field(s): {', '.join(unknown)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(given.get("rate"), int) and not isinstance(given["rate"], bool):
            given["rate"] = float(given["rate"])  # as --rate gives it (a TOML file: 1000)
        if "shapes" in given:
            shapes = given["shapes"]
            if not isinstance(shapes, list | tuple):
                raise SpecError(f"shapes must be a list of tables, got {shapes!r}")
            given["shapes"] = tuple(
                s if isinstance(s, Shape) else Shape.from_dict(s) for s in shapes
            )
        return replace(self, **given).validate()

    @classmethod
    def from_toml(
        cls, path: Path, scenarios: Callable[[str], tuple[str, tuple[Shape, ...]]] | None = None
    ) -> WorkloadSpec:
        """Read a workload file: top-level keys and a ``[workload]`` table name the fields.
        A ``scenario`` named without ``shapes`` is looked up with ``scenarios``
        (``shaped.load``: a shipped name or a file)."""
        data = merged_table(load_toml(path, "workload", SpecError), "workload", SpecError, path)
        named = data.get("scenario")
        if scenarios is not None and isinstance(named, str) and "shapes" not in data:
            data["scenario"], data["shapes"] = scenarios(named)
        return cls().with_overrides(data)


#: Open-loop arrival processes (``WorkloadSpec.arrivals``).
ARRIVALS = ("poisson", "constant")
#: Limits of ``WorkloadSpec.rate`` (operations a second over all workers), besides 0.
MIN_RATE = 0.001
MAX_RATE = 1e9
#: The longest an open-loop pass may be paced to last.
MAX_PACED_SECONDS = 3600.0


class Arrivals:
    """When one worker's client operations are meant to start, in seconds after its first:
    ``rate`` a second, with exponential gaps from a generator seeded with ``seed``
    (``poisson``) or equal ones. An open-loop client sends each operation at that time, or
    at once when it is late, and its latency runs from that time (wrk2's correction of
    coordinated omission)."""

    def __init__(self, rate: float, poisson: bool, seed: str) -> None:
        self.rate, self.poisson = rate, poisson
        self._random = random.Random(seed)
        self._sent = 0
        self._at = 0.0

    def next(self) -> float:
        """The next operation's start, in seconds after the first's (0 for the first)."""
        at = self._at
        self._sent += 1
        if self.poisson:
            self._at += self._random.expovariate(self.rate)
        else:
            self._at = self._sent / self.rate
        return at


@dataclass(frozen=True, slots=True)
class Stream:
    """One worker's operations in order: parallel lists of kind, user and virtual time."""

    kinds: list[Op]
    users: list[str]
    times: list[float]

    def __len__(self) -> int:
        return len(self.kinds)

    @property
    def client_ops(self) -> int:
        return sum(1 for kind in self.kinds if kind is not Op.SYNC)

    def without(self, kind: Op) -> Stream:
        """This stream with every operation of ``kind`` left out, times unchanged."""
        keep = [i for i, k in enumerate(self.kinds) if k is not kind]
        return Stream(
            [self.kinds[i] for i in keep],
            [self.users[i] for i in keep],
            [self.times[i] for i in keep],
        )

    @property
    def span(self) -> float:
        """Virtual seconds from the first to just past the last operation."""
        return (self.times[-1] - self.times[0]) + 1.0 if self.times else 1.0


@dataclass(frozen=True, slots=True)
class Workload:
    """The three streams of every worker, and the truth after one pass of ``mixed``."""

    spec: WorkloadSpec
    writes: list[Stream]
    reads: list[Stream]
    mixed: list[Stream]
    online_after_mixed: frozenset[str]
    end_time: float
    #: Per worker, (time, its users online just after it) at each change in one pass of
    #: ``mixed`` (a user is one worker's: ``users[w::workers]``).
    online_steps: tuple[tuple[tuple[float, int], ...], ...] = ()
    #: (shape kind, from, to): the virtual seconds each shape of the scenario shapes.
    windows: tuple[tuple[str, float, float], ...] = ()
    #: Per worker, its users online just before each of its client operations in one pass
    #: of ``mixed`` (syncs left out), then after its last.
    online_before: tuple[tuple[int, ...], ...] = ()

    def online_of(self, worker: int, now: float) -> int:
        """Worker ``worker``'s users online at virtual time ``now`` of the first pass."""
        steps = self.online_steps[worker]
        index = bisect.bisect_right(steps, (now, math.inf))
        return steps[index - 1][1] if index else 0

    def online_at(self, now: float) -> int:
        """The users online at virtual time ``now`` of the first pass."""
        return sum(self.online_of(w, now) for w in range(len(self.online_steps)))

    @property
    def fill(self) -> list[Stream]:
        """``mixed`` without its reads: the logins, logouts, heartbeats and syncs of one
        pass, which leave the nodes in the state the whole pass leaves (a read changes
        nothing a later read returns). The reads benchmark replays it, untimed, first."""
        return [stream.without(Op.READ) for stream in self.mixed]

    def stream(self, name: str, worker: int) -> Stream:
        """Worker ``worker``'s stream ``name`` ("writes", "reads", "mixed" or "fill"; the
        fill made for that worker alone)."""
        if name == "fill":
            return self.mixed[worker].without(Op.READ)
        streams: list[Stream] = getattr(self, name)
        return streams[worker]


def user_name(index: int) -> str:
    return f"user{index}"


def user_events(
    spec: WorkloadSpec,
    rng: random.Random,
    heartbeats: bool = True,
    span: float | None = None,
) -> Iterator[tuple[float, Op, int]]:
    """Every user's login, heartbeat and logout events in virtual-time order, forever.
    Without ``heartbeats`` the same logins and logouts alone (heartbeats draw nothing
    from ``rng``), however many heartbeats a session would have had. With ``span`` (the
    pass's virtual seconds without shapes) the spec's shapes act on the users at their
    times, each drawing from a generator of its own (a ``disconnect`` yields ``VANISH``
    events); without it, or without shapes, the events are those of no shapes."""
    mean = spec.session_length
    hb = spec.heartbeat_interval if heartbeats else math.inf
    shapes = spec.shapes if span is not None else ()
    # (time, user, version): a shape that takes a user over bumps the user's version, and
    # the user's queued event, now stale, is skipped. Shape i starts at an entry with user
    # -1 - i; a churn or a skew ends at one with user -1 - len(shapes) - i.
    queue = [(rng.expovariate(1.0 / mean), user, 0) for user in range(spec.users)]
    for index, shape in enumerate(shapes):
        assert span is not None
        queue.append((shape.at * span, -1 - index, 0))
        if shape.kind in LASTING:
            queue.append(((shape.at + shape.duration) * span, -1 - len(shapes) - index, 0))
    heapq.heapify(queue)
    session_end: dict[int, float] = {}
    version: dict[int, int] = {}
    scale: dict[int, float] = {}  # user -> times its usual session and offline means
    beat: dict[int, float] = {}  # user -> times its usual heartbeat interval
    daily: dict[int, tuple[float, float, float]] = {}  # user -> (from, to, factor at peak)
    taken_by: dict[int, list[int]] = {}  # a churn's, skew's or daily's users, until its end
    while True:
        now, user, seen = heapq.heappop(queue)
        if user < -len(shapes):  # a churn's or a skew's end
            for taken in taken_by.pop(-1 - len(shapes) - user, []):
                scale.pop(taken, None)
                beat.pop(taken, None)
                daily.pop(taken, None)
            continue
        if user < 0:
            assert span is not None
            index = -1 - user
            yield from _shape(
                spec.shapes[index],
                index,
                now,
                span,
                spec,
                hb,
                state=(queue, session_end, version, scale, beat, daily, taken_by),
            )
            continue
        if seen != version.get(user, 0):
            continue
        end = session_end.get(user)
        gap = hb * beat.get(user, 1.0)
        if end is None:
            end = now + rng.expovariate(1.0 / (mean * scale.get(user, 1.0)))
            session_end[user] = end
            yield now, Op.LOGIN, user
            heapq.heappush(queue, (min(now + gap, end), user, seen))
        elif now >= end:
            del session_end[user]
            yield now, Op.LOGOUT, user
            away = mean * scale.get(user, 1.0)
            if user in daily:  # a half sine from 1 at the window's ends to its factor
                low, high, peak = daily[user]
                away *= 1 + (peak - 1) * math.sin(math.pi * (now - low) / (high - low))
            offline = rng.expovariate(1.0 / away)
            heapq.heappush(queue, (now + offline, user, seen))
        else:
            yield now, Op.HEARTBEAT, user
            heapq.heappush(queue, (min(now + gap, end), user, seen))


#: Shapes that last from their start for their duration, then give their users back.
LASTING = ("churn", "skew", "daily")

_ShapeState = tuple[
    list[tuple[float, int, int]],
    dict[int, float],
    dict[int, int],
    dict[int, float],
    dict[int, float],
    dict[int, tuple[float, float, float]],
    dict[int, list[int]],
]


def _shape(
    shape: Shape,
    index: int,
    now: float,
    span: float,
    spec: WorkloadSpec,
    hb: float,
    state: _ShapeState,
) -> Iterator[tuple[float, Op, int]]:
    """Shape ``index`` starts at ``now``: pick its users (its own generator, seeded from
    the workload's seed and its place) and take them over (see :class:`Shape`)."""
    queue, session_end, version, scale, beat, daily, taken_by = state
    chosen = random.Random(f"{spec.seed}:shape:{index}")
    if shape.kind == "storm":
        pool = [u for u in range(spec.users) if u not in session_end]
    elif shape.kind in ("skew", "daily"):
        pool = list(range(spec.users))
    else:
        pool = sorted(session_end)
    picked = chosen.sample(pool, round(shape.share * len(pool)))
    window, spread = shape.duration * span, shape.spread * span
    if not picked or (shape.kind in LASTING and window <= 0):  # nothing to do, or no time
        return
    if shape.kind == "daily":
        taken_by[index] = picked
        for taken in picked:
            daily[taken] = (now, now + window, shape.factor)
        return
    if shape.kind in ("churn", "skew"):
        taken_by[index] = picked
        weights = [(rank + 1) ** -shape.factor for rank in range(len(picked))]
        typical = sum(weights) / len(weights)
        for rank, taken in enumerate(picked):
            factor = shape.factor if shape.kind == "churn" else typical / weights[rank]
            scale[taken] = factor
            if shape.kind == "skew":
                beat[taken] = factor
            end = session_end.get(taken)
            if end is not None:  # online: its session and its next heartbeat change now
                version[taken] = version.get(taken, 0) + 1
                end = now + chosen.expovariate(1.0 / (spec.session_length * factor))
                session_end[taken] = end
                gap = hb * beat.get(taken, 1.0)
                heapq.heappush(queue, (min(now + gap, end), taken, version[taken]))
        return
    for rank, taken in enumerate(picked):
        version[taken] = version.get(taken, 0) + 1
        if shape.kind == "storm":
            at = now + (rank + 0.5) * window / len(picked)
        else:
            del session_end[taken]
            yield now, Op.VANISH, taken
            at = now + window + (rank + 0.5) * spread / len(picked)
        heapq.heappush(queue, (at, taken, version[taken]))


def _deal(
    spec: WorkloadSpec, events: Iterator[tuple[float, Op, int]], total: int
) -> list[list[tuple[float, Op, int]]]:
    dealt: list[list[tuple[float, Op, int]]] = [[] for _ in range(spec.workers)]
    for _, event in zip(range(total), events, strict=False):
        dealt[event[2] % spec.workers].append(event)
    return dealt


def _with_syncs(spec: WorkloadSpec, ops: list[tuple[float, Op, str]]) -> Stream:
    kinds: list[Op] = []
    users: list[str] = []
    times: list[float] = []
    for done, (now, kind, user) in enumerate(ops, start=1):
        kinds.append(kind)
        users.append(user)
        times.append(now)
        if done % spec.sync_every == 0 or done == len(ops):
            kinds.append(Op.SYNC)
            users.append("")
            times.append(now)
    return Stream(kinds, users, times)


def build(spec: WorkloadSpec) -> Workload:
    """Generate the workload of ``spec``: the same seed always gives the same streams."""
    spec.validate()
    root = random.Random(spec.seed)
    mixed_bits = root.getrandbits(64)
    mixed_rng, writes_rng = random.Random(mixed_bits), random.Random(root.getrandbits(64))
    total = spec.operations * spec.workers
    # Per worker, (time, +1 or -1): its users online (a user belongs to one worker); and
    # its users online just before each of its client operations, then after the last.
    changes: list[list[tuple[float, int]]] = [[] for _ in range(spec.workers)]
    before: list[list[int]] = [[] for _ in range(spec.workers)]
    windows: list[tuple[str, float, float]] = []

    # Mixed: user events dealt to their owners, reads interleaved at the read ratio
    # (each user event is preceded by a geometric number of reads, mean r / (1 - r)).
    online: set[str] = set()
    end_time = 0.0
    mixed_ops: list[list[tuple[float, Op, str]]] = [[] for _ in range(spec.workers)]
    if spec.read_ratio < 1:
        user_ops = max(1, round(total * (1 - spec.read_ratio)))
        span = None
        if spec.shapes:  # shapes are placed in the span the pass has without them
            dry = _deal(spec, user_events(spec, random.Random(mixed_bits)), user_ops)
            span = max((event[0] for events in dry for event in events), default=0.0) or 1.0
            windows = [(shape.kind, *shape.window(span)) for shape in spec.shapes]
        dealt = _deal(spec, user_events(spec, mixed_rng, span=span), user_ops)
        for worker, (events, ops) in enumerate(zip(dealt, mixed_ops, strict=True)):
            for now, kind, user in events:
                name = user_name(user)
                if kind is Op.LOGIN and name not in online:
                    changes[worker].append((now, 1))
                elif kind in (Op.LOGOUT, Op.VANISH) and name in online:
                    changes[worker].append((now, -1))
                if kind is Op.VANISH:  # nothing is sent: the user is simply gone
                    online.discard(name)
                    continue
                while mixed_rng.random() < spec.read_ratio:
                    ops.append((now, Op.READ, ""))
                ops.append((now, kind, name))
                if kind is Op.LOGIN:
                    online.add(name)
                elif kind is Op.LOGOUT:
                    online.discard(name)
                end_time = max(end_time, now)
    else:
        mixed_ops = [[(0.0, Op.READ, "")] * spec.operations for _ in range(spec.workers)]
    for worker, ops in enumerate(mixed_ops):
        # A read comes just before the user event it precedes, at that event's time: the
        # users online before an operation are the changes strictly before its time.
        count, step, worker_changes = 0, 0, changes[worker]
        for now, _, _ in ops:
            while step < len(worker_changes) and worker_changes[step][0] < now:
                count += worker_changes[step][1]
                step += 1
            before[worker].append(count)
        before[worker].append(sum(delta for _, delta in worker_changes))

    # Writes: logins and logouts only, ``operations`` per worker on average.
    write_events = user_events(spec, writes_rng, heartbeats=False)
    writes = [
        _with_syncs(spec, [(now, kind, user_name(user)) for now, kind, user in events])
        for events in _deal(spec, write_events, total)
    ]

    # Reads: count() only, at the end of the mixed pass (drivers fill the nodes with it first).
    reads = [
        _with_syncs(spec, [(end_time, Op.READ, "")] * spec.operations) for _ in range(spec.workers)
    ]
    mixed = [_with_syncs(spec, ops) for ops in mixed_ops]
    steps = []
    for worker_changes in changes:
        count, worker_steps = 0, []
        for at, delta in worker_changes:  # in time order: a worker's events are
            count += delta
            worker_steps.append((at, count))
        steps.append(tuple(worker_steps))
    return Workload(
        spec,
        writes,
        reads,
        mixed,
        frozenset(online),
        end_time,
        tuple(steps),
        tuple(windows),
        tuple(tuple(counts) for counts in before),
    )
