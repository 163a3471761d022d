"""Sessions: tests, lint, typecheck (run by CI) and bench (a short real benchmark)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ("bench", "strategies", "reports")
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


def dependencies() -> list[str]:
    """The runtime dependencies, with the plot extra's (mypy checks reports/plot.py)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["plot"]]


@nox.session
def tests(session: nox.Session) -> None:
    """pytest against the installed package (a real wheel build, not the source tree), on
    one pytest-xdist worker per CPU, at most four (``-- -n 0`` runs it in one process)."""
    session.install(".[test]")
    session.run(
        "pytest", "-n", "auto", "--maxprocesses", "4", "--dist", "worksteal", *session.posargs
    )


def namespace_tree(session: nox.Session) -> Path:
    """A temporary tree whose countbench/ folder links bench/, strategies/ and reports/:
    the installed namespace, for tools that cannot see setuptools' package-dir mapping."""
    tree = Path(session.create_tmp()) / "namespace"
    namespace = tree / "countbench"
    namespace.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        link = namespace / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(ROOT / name, target_is_directory=True)
    return tree


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the layers and import circles (import-linter, contracts in pyproject)."""
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    with session.chdir(namespace_tree(session)):
        session.run("lint-imports", "--config", str(ROOT / "pyproject.toml"))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over bench/ strategies/ reports/ as the countbench.* namespace."""
    # hypothesis: bench/testing.py (the conformance kit) imports it for plug-in test suites.
    session.install("mypy", "types-psutil", "hypothesis", *dependencies())
    with session.chdir(namespace_tree(session)):
        session.run("mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "countbench")


@nox.session
def bench(session: nox.Session) -> None:
    """A short real benchmark: compare all (JSON report), the harness overhead, then the
    simulator's scale target."""
    session.install(".")
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    session.run("python", "-m", "countbench.bench.startup", success_codes=[0, 1])
    session.run("countbench", "compare", "all", "--json", str(out / "compare.json"), "--force")
    local = out / "local-1-worker.json"
    session.run(
        "countbench",
        "run",
        "--strategy",
        "local",
        "--workers",
        "1",
        "--quiet",
        "--json",
        str(local),
        "--force",
    )
    # Targets: each prints its ratio and exits 1 below it; the session reports all of them.
    # The median of 3 pairs; at depth 16 a million requests, or redis-benchmark's side lasts
    # a fraction of a second and one load spike decides the ratio.
    for depth, requests in (("1", "200000"), ("16", "1000000")):
        session.run(
            "python",
            "-m",
            "countbench.bench.redis_benchmark_ratio",
            "--pipeline",
            depth,
            "--repeat",
            "3",
            "--requests",
            requests,
            success_codes=[0, 1],
        )
    session.run(
        "python",
        "-m",
        "countbench.bench.overhead",
        str(local),
        "--quiet",
        "--processes",
        "3",
        "--values",
        "3",
        "--min-time",
        "0.05",
        success_codes=[0, 1],
    )
    # Issue 6: the simulator with 100 nodes and 100,000 operations in under a minute, per
    # replicated CRDT strategy; prints each time, exits 1 when one is over (stopped there).
    session.run(
        "python",
        "-m",
        "countbench.bench.sim.speed",
        "--strategies",
        "pncounter,gcounter,compact,orset",
        "--nodes",
        "100",
        "--operations",
        "100000",
        "--limit",
        "60",
        success_codes=[0, 1],
    )


@nox.session
def gate(session: nox.Session) -> None:
    """The gates measured on this machine (issue 15's targets): `countbench gate-check`
    with its defaults (20 identical and 10 slowed pairs per gate; about 25 minutes)."""
    session.install(".")
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    session.run("countbench", "gate-check", "--json", str(out / "gate-check.json"), "--force")
