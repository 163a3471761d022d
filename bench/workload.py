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

import heapq
import math
import random
import tomllib
from collections.abc import Iterator, Mapping
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


WRITES = frozenset({Op.LOGIN, Op.LOGOUT})


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
        if self.arrivals not in ARRIVALS:
            raise SpecError(f"arrivals must be {' or '.join(ARRIVALS)}, got {self.arrivals!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every field; ``rate`` and ``arrivals`` only for an open-loop workload (a closed
        loop's report reads as it did before they existed)."""
        fields_ = asdict(self)
        if not self.rate:
            del fields_["rate"], fields_["arrivals"]
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
        return replace(self, **given).validate()

    @classmethod
    def from_toml(cls, path: Path) -> WorkloadSpec:
        """Read a workload file: top-level keys and a ``[workload]`` table name the fields."""
        data = load_toml(path, "workload", SpecError)
        return cls().with_overrides(merged_table(data, "workload", SpecError, path))


#: Open-loop arrival processes (``WorkloadSpec.arrivals``).
ARRIVALS = ("poisson", "constant")
#: Limits of ``WorkloadSpec.rate`` (operations a second over all workers), besides 0.
MIN_RATE = 0.001
MAX_RATE = 1e9


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

    @property
    def fill(self) -> list[Stream]:
        """``mixed`` without its reads: the logins, logouts, heartbeats and syncs of one
        pass, which leave the nodes in the state the whole pass leaves (a read changes
        nothing a later read returns). The reads benchmark replays it, untimed, first."""
        return [stream.without(Op.READ) for stream in self.mixed]


def user_name(index: int) -> str:
    return f"user{index}"


def user_events(
    spec: WorkloadSpec, rng: random.Random, heartbeats: bool = True
) -> Iterator[tuple[float, Op, int]]:
    """Every user's login, heartbeat and logout events in virtual-time order, forever.
    Without ``heartbeats`` the same logins and logouts alone (heartbeats draw nothing
    from ``rng``), however many heartbeats a session would have had."""
    mean = spec.session_length
    hb = spec.heartbeat_interval if heartbeats else math.inf
    queue = [(rng.expovariate(1.0 / mean), user) for user in range(spec.users)]
    heapq.heapify(queue)
    session_end: dict[int, float] = {}
    while True:
        now, user = heapq.heappop(queue)
        end = session_end.get(user)
        if end is None:
            end = now + rng.expovariate(1.0 / mean)
            session_end[user] = end
            yield now, Op.LOGIN, user
            heapq.heappush(queue, (min(now + hb, end), user))
        elif now >= end:
            del session_end[user]
            yield now, Op.LOGOUT, user
            heapq.heappush(queue, (now + rng.expovariate(1.0 / mean), user))
        else:
            yield now, Op.HEARTBEAT, user
            heapq.heappush(queue, (min(now + hb, end), user))


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
    mixed_rng, writes_rng = random.Random(root.getrandbits(64)), random.Random(root.getrandbits(64))
    total = spec.operations * spec.workers

    # Mixed: user events dealt to their owners, reads interleaved at the read ratio
    # (each user event is preceded by a geometric number of reads, mean r / (1 - r)).
    online: set[str] = set()
    end_time = 0.0
    mixed_ops: list[list[tuple[float, Op, str]]] = [[] for _ in range(spec.workers)]
    if spec.read_ratio < 1:
        user_ops = max(1, round(total * (1 - spec.read_ratio)))
        dealt = _deal(spec, user_events(spec, mixed_rng), user_ops)
        for events, ops in zip(dealt, mixed_ops, strict=True):
            for now, kind, user in events:
                while mixed_rng.random() < spec.read_ratio:
                    ops.append((now, Op.READ, ""))
                name = user_name(user)
                ops.append((now, kind, name))
                if kind is Op.LOGIN:
                    online.add(name)
                elif kind is Op.LOGOUT:
                    online.discard(name)
                end_time = max(end_time, now)
    else:
        mixed_ops = [[(0.0, Op.READ, "")] * spec.operations for _ in range(spec.workers)]

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
    return Workload(spec, writes, reads, mixed, frozenset(online), end_time)
