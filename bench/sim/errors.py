"""The simulator's one error type for bad input."""

from __future__ import annotations

from ...strategies.errors import UsageError


class SimUsageError(ValueError, UsageError):
    """Bad input to the simulator: an unknown or non-replicated strategy, an unknown fault,
    a number out of range, an unreadable or invalid scenario file. The message is always
    one line (whitespace, including newlines, is collapsed), fit for stderr and exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
