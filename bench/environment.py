"""Facts about the machine and interpreter a run used, for the report."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

import psutil

from ..strategies.local import gil_enabled


def tool_version() -> str:
    try:
        return version("countbench")
    except PackageNotFoundError:
        return "unknown"


def python_facts() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "gil_enabled": gil_enabled(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    freq = None
    try:
        current = psutil.cpu_freq()
        freq = round(current.max or current.current) if current else None
    except (OSError, NotImplementedError):
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count_logical": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_freq_mhz": freq,
        "memory_total_bytes": psutil.virtual_memory().total,
        "load_average": list(psutil.getloadavg()),
    }


#: Written into an installed package at build time by ``setup.py`` (not in the sources).
BUILD_INFO = Path(__file__).with_name("build_info.json")


def git_facts() -> dict[str, Any] | None:
    """The commit countbench runs from: the source checkout's (an editable install, or
    the sources themselves), else the one ``setup.py`` recorded when the installed wheel
    was built; None when neither is known."""
    source = Path(__file__).resolve().parent.parent
    if (source / "pyproject.toml").is_file():
        facts = _checkout_commit(source)
        if facts is not None:
            return facts
    try:
        built = json.loads(BUILD_INFO.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(built, dict) or not isinstance(built.get("commit"), str):
        return None
    return {"commit": built["commit"], "dirty": bool(built.get("dirty")), "source": "build"}


def _checkout_commit(source: Path) -> dict[str, Any] | None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(source), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty), "source": "checkout"} if commit else None


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def strategy_package(cls: type[Any]) -> dict[str, str] | None:
    """The installed distribution a strategy class comes from, and its version (a
    plug-in's own package, or countbench for a built-in); None when it is not installed
    (a class defined in a script)."""
    top = cls.__module__.split(".")[0]
    for name in _distributions().get(top, []):
        try:
            return {"name": name, "version": version(name)}
        except PackageNotFoundError:
            continue
    return None
