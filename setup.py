"""Build hook: an installed countbench knows the commit it was built from.

``pip install .`` copies the package out of the checkout, so at run time there is no git
to ask. ``build_py`` writes ``countbench/bench/build_info.json`` (the commit, and whether
tracked files had changes) into the build, never into the sources; without git (an sdist)
it writes nothing. Read by ``countbench.bench.environment.git_facts``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(HERE), *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        super().run()
        try:
            commit = _git("rev-parse", "HEAD")
            dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        except (OSError, subprocess.SubprocessError):
            return
        target = Path(self.build_lib) / "countbench" / "bench" / "build_info.json"
        if commit and target.parent.is_dir():
            target.write_text(json.dumps({"commit": commit, "dirty": dirty}) + "\n")


setup(cmdclass={"build_py": BuildPyWithCommit})
