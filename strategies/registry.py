"""Where strategies are found: the built-ins, then the ``countbench.strategies`` entry points.

A third-party package registers a :class:`~countbench.strategies.base.Strategy` subclass:

    [project.entry-points."countbench.strategies"]
    mycounter = "mypackage.counter:MyCounterStrategy"
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

from .aggregate import AggregateOnDemand, AggregateRemote
from .base import Mode, ReplicatedStrategy, Strategy
from .central import CentralCounterService
from .compact import CompactStrategy
from .errors import UsageError
from .eventual import EventualSync
from .gcounter import GCounterStrategy
from .local import LocalCounter
from .orset import ORSetStrategy
from .pncounter import PNCounterStrategy
from .pncounter_op import OpPNCounterStrategy
from .redis_cluster import RedisClusterSessions
from .redis_incr import RedisIncrCounter
from .redis_set import RedisSetSessions
from .redis_zset import RedisSortedSetSessions
from .session import SessionStrategy
from .vclock import VClockStrategy

ENTRY_POINT_GROUP = "countbench.strategies"

BUILTINS: tuple[type[Strategy], ...] = (
    LocalCounter,
    SessionStrategy,
    GCounterStrategy,
    PNCounterStrategy,
    OpPNCounterStrategy,
    ORSetStrategy,
    VClockStrategy,
    CompactStrategy,
    RedisSetSessions,
    RedisSortedSetSessions,
    RedisIncrCounter,
    RedisClusterSessions,
    CentralCounterService,
    AggregateOnDemand,
    AggregateRemote,
    EventualSync,
)


class UnknownStrategy(LookupError, UsageError):
    """A strategy name that no built-in and no installed plug-in provides."""


def discover(errors: list[str] | None = None) -> dict[str, type[Strategy]]:
    """Every strategy by name, built-ins first. A plug-in that fails to load, or that is
    not a Strategy subclass, is skipped and described in ``errors`` (when given)."""
    found: dict[str, type[Strategy]] = {cls.name: cls for cls in BUILTINS}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plug-in must not break the tool
            if errors is not None:
                errors.append(f"plug-in {entry.name!r} ({entry.value}) failed to load: {exc}")
            continue
        if not (isinstance(loaded, type) and issubclass(loaded, Strategy)):
            if errors is not None:
                errors.append(f"plug-in {entry.name!r} ({entry.value}) is not a Strategy class")
            continue
        missing = _missing(loaded)
        if missing:
            if errors is not None:
                errors.append(f"plug-in {entry.name!r} ({entry.value}) does not define {missing}")
            continue
        found.setdefault(loaded.name, loaded)
    return found


def _missing(cls: type[Strategy]) -> str | None:
    """What a plug-in class must define and does not, or None."""
    if inspect.isabstract(cls):
        return ", ".join(f"{name}()" for name in sorted(cls.__abstractmethods__))
    attributes = ("name", "summary", "consistency")
    absent = [name for name in attributes if not hasattr(cls, name)]
    default = issubclass(cls, ReplicatedStrategy) and cls.replica is ReplicatedStrategy.replica
    if default and not hasattr(cls, "replica_class"):
        absent.append("replica_class (or replica())")
    return ", ".join(absent) or None


def mode_problem(cls: type[Strategy], mode: Mode) -> str | None:
    """Why ``cls`` cannot run in ``mode``, in one line; None when it can."""
    if mode in cls.modes:
        return None
    can = ", ".join(sorted(str(m) for m in cls.modes))
    return f"strategy {cls.name!r} cannot run in {mode} mode (it runs in: {can})"


def resolve(names: str, available: dict[str, type[Strategy]]) -> list[type[Strategy]]:
    """``"all"`` or a comma-separated list of names -> strategy classes, in the order given."""
    if names.strip() == "all":
        return list(available.values())
    chosen: list[type[Strategy]] = []
    for name in (part.strip() for part in names.split(",")):
        if not name:
            continue
        if name not in available:
            known = ", ".join(available)
            raise UnknownStrategy(f"unknown strategy {name!r} (known: {known})")
        if available[name] not in chosen:
            chosen.append(available[name])
    if not chosen:
        raise UnknownStrategy("no strategy named (give 'all' or names separated by commas)")
    return chosen


def describe(cls: type[Strategy]) -> dict[str, Any]:
    return {
        "name": cls.name,
        "summary": cls.summary,
        "consistency_claim": str(cls.consistency),
        "specification": cls.specification.to_dict(),
        "modes": sorted(str(m) for m in cls.modes),
        "topology": str(cls.topology),
        "article_approach": cls.article_approach,
        "module": cls.__module__,
    }
