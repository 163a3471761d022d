"""Drivers: threads, processes and asyncio tasks around the same strategy objects."""

from __future__ import annotations

from ...strategies.base import Mode, Strategy
from ..workload import Workload
from .asyncio_tasks import AsyncioDriver
from .base import STREAMS, Driver, DriverError, StreamName
from .processes import ProcessDriver
from .threads import ThreadDriver

DRIVERS: dict[Mode, type[Driver]] = {
    Mode.THREAD: ThreadDriver,
    Mode.PROCESS: ProcessDriver,
    Mode.ASYNCIO: AsyncioDriver,
}


def make_driver(
    mode: Mode,
    strategy: Strategy,
    workload: Workload,
    namespace: str = "countbench:local:",
    record_latency: bool = False,
) -> Driver:
    """The driver for ``mode``; the caller has checked that the strategy supports it."""
    return DRIVERS[mode](strategy, workload, workload.spec.workers, namespace, record_latency)


__all__ = ["DRIVERS", "STREAMS", "Driver", "DriverError", "StreamName", "make_driver"]
