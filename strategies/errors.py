"""countbench's errors. Each says what went wrong in one line, and how the CLI exits: a
:class:`UsageError` (bad input, nothing was measured) exits 2, a :class:`RunError` (a
server, worker or client failed during the run) exits 1. The command line catches
:class:`CountbenchError` in one place; anything else is a bug and keeps its traceback."""

from __future__ import annotations


class CountbenchError(Exception):
    """An error countbench reports in one line, with exit status ``exit_code``."""

    exit_code = 1


class UsageError(CountbenchError):
    """Bad input: an option, a file, a name, a value out of range."""

    exit_code = 2


class RunError(CountbenchError):
    """A run that could not be completed: a server, a worker or a client failed."""

    exit_code = 1
