"""Shaped scenarios: named TOML files shipped with countbench (``bench/scenarios/``), or a
user's own file in the same format::

    description = "what it models"   # optional
    [[shape]]
    kind = "disconnect"   # or "storm" (see workload.Shape)
    at = 0.5              # fractions of the pass's span
    duration = 0.1
    share = 0.34
    spread = 0.05         # optional

``countbench run|compare --scenario NAME|FILE`` puts the shapes in the workload; the report
echoes them (``workload.scenario``, ``workload.shapes``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .workload import Shape, SpecError, load_toml

KEYS = frozenset({"description", "shape"})


def names() -> list[str]:
    """The scenarios shipped with countbench."""
    folder = resources.files("countbench.bench") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load(given: str) -> tuple[str, tuple[Shape, ...]]:
    """(name, shapes) of the scenario ``given``: a shipped one's name, or a TOML file."""
    if not given.strip():
        raise SpecError(f"--scenario needs a name ({', '.join(names())}) or a .toml file")
    if given in names():
        with resources.as_file(resources.files("countbench.bench") / "scenarios") as folder:
            return given, shapes(Path(folder) / f"{given}.toml")
    path = Path(given)
    if path.suffix != ".toml" and not path.exists():
        raise SpecError(f"no scenario {given!r}: give one of {', '.join(names())}, or a .toml file")
    return str(path), shapes(path)


def shapes(path: Path) -> tuple[Shape, ...]:
    data = load_toml(path, "scenario", SpecError)
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise SpecError(f"scenario file {path}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("description", ""), str):
        raise SpecError(f"scenario file {path}: description must be text")
    found = data.get("shape")
    if not isinstance(found, list) or not found:
        raise SpecError(f"scenario file {path}: no [[shape]]")
    try:
        return tuple(Shape.from_dict(shape) for shape in found)
    except SpecError as exc:
        raise SpecError(f"scenario file {path}: {exc}") from None
