"""The JSON report: written atomically, never over an existing file unless asked.

A report is a dict with a ``schema_version``; see ``bench/measure.py`` for its content.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..strategies.errors import RunError, UsageError


class ReportPathError(ValueError, UsageError):
    """An output path that cannot be written, with a one-line message."""


class ReportWriteError(RunError):
    """Writing an output failed (a full disk, an I/O error); nothing was left behind."""


#: Free bytes a folder must have before a run that will write into it starts.
MIN_FREE_BYTES = 1 << 20


def check_output_path(path: Path, force: bool) -> Path:
    """Refuse, before any work is done, a path that could not take the report: a folder,
    a missing or read-only or full folder, a device, pipe or socket (even with
    ``force``), or an existing file without ``force``."""
    if path.is_dir():
        raise ReportPathError(f"{path} is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ReportPathError(f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ReportPathError(f"folder {parent} is not writable")
    _check_target(path, force)
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(parent).free
        if free < MIN_FREE_BYTES:
            raise ReportPathError(f"folder {parent} is full ({free:,} bytes free)")
    return path


def _check_target(path: Path, force: bool) -> None:
    """Refuse a device, pipe or socket at ``path`` (even with ``force``), and an existing
    file without ``force``."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ReportPathError(f"{path}: {exc.strerror or exc}") from None
    else:
        if not stat.S_ISREG(mode):
            raise ReportPathError(
                f"{path} is not a regular file (a device, pipe or socket); "
                "countbench writes only regular files"
            )
        if not force:
            raise ReportPathError(f"{path} exists; use --force to replace it")


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[BinaryIO], None], force: bool = True) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then move it into place: a
    reader sees the old file or the whole new one, never half of one. Without ``force``
    the move fails if ``path`` exists by then (two runs racing for one name: one wins).
    The file's mode follows the umask, as any file the user creates. A failure leaves
    nothing behind and raises :class:`ReportWriteError` (or :class:`ReportPathError`)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(Path(tmp), path, force)
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _publish(tmp: Path, path: Path, force: bool) -> None:
    _check_target(path, force)  # what changed while measuring: a device, a rival file
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if the name exists: no window between check and write
    except FileExistsError:
        raise ReportPathError(f"{path} exists; use --force to replace it") from None
    except OSError:  # a file system without hard links
        os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict[str, Any], force: bool = False) -> None:
    """Write ``data`` as indented JSON with :func:`write_atomic`, after
    :func:`check_output_path`."""
    check_output_path(path, force)
    try:
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    except ValueError as exc:  # NaN or infinity: no strict JSON parser would read it
        raise RunError(f"{path}: the report holds a number JSON cannot carry ({exc})") from None
    write_bytes_atomic(path, (text + "\n").encode("utf-8"), force)


def write_bytes_atomic(path: Path, body: bytes, force: bool) -> None:
    """:func:`write_atomic` of ``body``."""

    def write(handle: BinaryIO) -> None:
        handle.write(body)

    write_atomic(path, write, force)
