"""Named baselines: reports saved under a short name, to diff later runs against.

``run``/``compare --save NAME`` store the report as ``FOLDER/NAME.json`` (default folder
``.countbench`` in the current directory, created when needed), replacing a report saved
earlier under the same name: saving again is how a baseline is updated. ``diff --baseline
NAME`` finds it again with :func:`baseline_path`. Every save also keeps a copy in
``FOLDER/history/NAME/RUNID-COMMIT.json`` (the run id starts with the UTC time of the run,
so the names sort in time; the commit is the first 12 hex digits, ``-dirty`` when the tree
had changes): :func:`history` lists them, oldest first, for ``diff --trend`` and ``plot
--trend``. Files are written atomically (see
:func:`~countbench.reports.json_report.write_json_atomic`); a history copy never replaces
another.

A name is 1 to 64 characters of ``A-Z a-z 0-9 _ . -`` not starting with ``.`` (no hidden
files, no path separators); anything else raises
:class:`~countbench.reports.load.ReportUsageError` with a one-line message, as does a
baseline that was never saved (the message lists the names that were).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..reports.json_report import ReportPathError, write_json_atomic
from ..reports.load import ReportUsageError, one_line

DEFAULT_FOLDER = Path(".countbench")
SUFFIX = ".json"
HISTORY = "history"
COPY = "_copy"  # RUNID-COMMIT_copy2.json: the same run saved a second time
_KEPT = re.compile(rf"(?P<stem>.+?)(?:{COPY}(?P<copy>\d+))?{re.escape(SUFFIX)}")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_name(name: str) -> str:
    """``name`` when it can name a baseline; ReportUsageError (one line) otherwise."""
    if not NAME.fullmatch(name) or name.startswith("."):
        raise ReportUsageError(
            f"bad baseline name {one_line(repr(name), 80)}: use 1 to 64 letters, digits, "
            "'_', '.' or '-', not starting with '.'"
        )
    return name


def saved_names(folder: Path = DEFAULT_FOLDER) -> list[str]:
    """The names of the baselines saved in ``folder``, sorted (none if it does not exist)."""
    if not folder.is_dir():
        return []
    names = (p.name[: -len(SUFFIX)] for p in folder.iterdir() if p.name.endswith(SUFFIX))
    return sorted(n for n in names if NAME.fullmatch(n) and not n.startswith("."))


def save_report(report: dict[str, Any], name: str, folder: Path = DEFAULT_FOLDER) -> Path:
    """Save ``report`` as baseline ``name`` in ``folder`` (replacing one of that name);
    return the file's path."""
    check_name(name)
    if folder.exists() and not folder.is_dir():
        raise ReportPathError(f"{folder} is not a folder; cannot save baseline {name!r}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportPathError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
    kept = folder / HISTORY / name
    try:  # before anything is replaced: a failure here leaves the saved report as it was
        kept.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportPathError(f"cannot create folder {kept}: {exc.strerror or exc}") from None
    path = folder / f"{name}{SUFFIX}"
    write_json_atomic(path, report, force=True)
    _keep(report, kept)
    return path


def _keep(report: dict[str, Any], folder: Path) -> Path:
    """A copy of ``report`` in the history ``folder``, under a name no other copy has."""
    git = report.get("git") or {}
    commit = str(git.get("commit") or "nocommit")[:12] + ("-dirty" if git.get("dirty") else "")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{report.get('run_id', 'run')}-{commit}")
    for attempt in range(1, 1000):
        path = folder / f"{stem}{'' if attempt == 1 else f'{COPY}{attempt}'}{SUFFIX}"
        try:
            write_json_atomic(path, report, force=False)
        except ReportPathError:
            if path.exists():
                continue  # the same run saved twice: keep both
            raise
        return path
    raise ReportPathError(f"{folder}: no free name for another copy of {stem}")


def _saved_order(path: Path) -> tuple[str, int]:
    found = _KEPT.fullmatch(path.name)
    if found is None:
        return path.name, 1
    return found["stem"], int(found["copy"] or 1)


def history(name: str, folder: Path = DEFAULT_FOLDER) -> list[Path]:
    """Every report saved under ``name``, oldest first; ReportUsageError when there is
    none (naming the baselines that have a history)."""
    check_name(name)
    kept = folder / HISTORY / name
    found = kept.glob(f"*{SUFFIX}") if kept.is_dir() else ()
    # Regular files only: a FIFO would block the read, a folder is not a run.
    paths = sorted((p for p in found if p.is_file()), key=_saved_order)
    if paths:
        return paths
    root = folder / HISTORY
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise ReportUsageError(
        f"no history of {name} in {root} (saved with a history: {', '.join(names) or 'none'})"
    )


def baseline_path(name: str, folder: Path = DEFAULT_FOLDER) -> Path:
    """The file of baseline ``name`` in ``folder``; ReportUsageError naming the saved ones
    when there is none."""
    check_name(name)
    path = folder / f"{name}{SUFFIX}"
    if path.is_file():
        return path
    saved = ", ".join(saved_names(folder)) or "none"
    raise ReportUsageError(f"no saved report named {name} in {folder} (saved: {saved})")
