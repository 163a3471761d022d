"""The JSON report: written atomically, never over an existing file unless asked.

A report is a dict with a ``schema_version``; see ``bench/measure.py`` for its content.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..strategies.errors import UsageError


class ReportPathError(ValueError, UsageError):
    """An output path that cannot be written, with a one-line message."""


def check_output_path(path: Path, force: bool) -> Path:
    """Refuse, before any work is done, a path that could not take the report."""
    if path.is_dir():
        raise ReportPathError(f"{path} is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ReportPathError(f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ReportPathError(f"folder {parent} is not writable")
    if path.exists() and not force:
        raise ReportPathError(f"{path} exists; use --force to replace it")
    return path


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then rename it into place:
    a reader sees the old file or the whole new one, never half of one."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: dict[str, Any], force: bool = False) -> None:
    """Write ``data`` as indented JSON with :func:`write_atomic`, after
    :func:`check_output_path`."""
    check_output_path(path, force)
    body = (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")

    def write(handle: BinaryIO) -> None:
        handle.write(body)

    write_atomic(path, write)
