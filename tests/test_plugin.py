"""The example plug-in (``examples/countbench-hll``) installed the way a user would: pip
into a folder on ``PYTHONPATH``, found through its ``countbench.strategies`` entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "countbench-hll"
CLI = [sys.executable, "-m", "countbench.bench.cli"]
TIMEOUT = 180


def _pip_install(source: Path, target: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    done = subprocess.run(
        [*pip, "--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _run(args: list[str], path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTBENCH_")}
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = str(path)
    env["COLUMNS"] = "200"
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    # A copy: building in place would leave build/ and *.egg-info in the repository.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    _pip_install(source, target)
    return target


def test_list_shows_the_plugin(installed: Path, tmp_path: Path) -> None:
    done = _run([*CLI, "list"], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "hll" in done.stdout
    assert "approximate" in done.stdout
    assert "pncounter" in done.stdout
    assert done.stderr == ""


def test_compare_includes_the_plugin(installed: Path, tmp_path: Path) -> None:
    args = ["compare", "hll", "--smoke", "--operations", "200", "--users", "40"]
    done = _run([*CLI, *args, "--quiet", "--json", "r.json"], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    names = [r["strategy"]["name"] for r in report["results"]]
    assert names == ["hll"]
    assert report["results"][0]["strategy"]["consistency_claim"] == "approximate"


def test_the_simulator_runs_the_plugin(installed: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from countbench.bench.sim import run_scenario, standard_scenario
        from countbench_hll import HyperLogLogStrategy

        scenario = standard_scenario("none", seed=3, nodes=3, operations=1500)
        result = run_scenario(HyperLogLogStrategy, scenario)
        again = run_scenario(HyperLogLogStrategy, scenario)
        assert result.trace_hash == again.trace_hash
        final = result.final
        assert final.agree, final
        # After quiescence every logged-out user has timed out: only the estimate's error.
        assert abs(final.values[0] - final.truth) <= max(3, 0.1 * final.truth), final
        print(result.strategy, final.truth, final.values[0])
        """
    )
    done = _run([sys.executable, "-c", script], installed, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hll ")


def test_the_plugins_own_suite_runs_the_conformance_kit(installed: Path, tmp_path: Path) -> None:
    tests = installed.parent / "src" / "tests"
    done = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        installed,
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_a_broken_plugin_is_one_warning(installed: Path, tmp_path: Path) -> None:
    source = tmp_path / "broken"
    source.mkdir()
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "countbench-broken"
            version = "0.0.1"

            [project.entry-points."countbench.strategies"]
            broken = "countbench_missing_module:Nothing"

            [tool.setuptools]
            py-modules = []
            """
        )
    )
    target = tmp_path / "site"
    _pip_install(source, target)
    path = Path(os.pathsep.join([str(target), str(installed)]))
    done = _run([*CLI, "list"], path, tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("warning:") and "broken" in warnings[0]
    for name in ("local", "session", "pncounter", "hll"):
        assert name in done.stdout
