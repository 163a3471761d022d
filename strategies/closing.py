"""Context managers shared by clients, servers and drivers: one way to write ``with``."""

from __future__ import annotations

from typing import Self


class Closing:
    """Used with ``with``, the object is closed on exit. Subclasses define ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Started:
    """Used with ``with``, the object is started on entry (unless it already runs) and
    stopped on exit. Subclasses define ``start()``, ``stop()`` and ``running``."""

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
