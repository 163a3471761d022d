"""Complexity measured from a strategy's own source code, with :mod:`ast`.

A strategy's code is its module plus the modules of the ``strategies`` package it imports
(transitively), not the shared interface ``strategies/base.py``. For that code we count:

* ``lines``: logical source lines, i.e. lines holding code, not blank, comment or docstring;
* ``cyclomatic``: McCabe's number summed over functions: 1 per function plus 1 per
  decision (``if``/``elif``, conditional expression, ``for``, ``while``, ``except``,
  ``case``, each ``for``/``if`` of a comprehension, and each extra operand of ``and``/``or``);
* ``max_function``: the largest cyclomatic number of a single function.
"""

from __future__ import annotations

import ast
import inspect
import sys
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

_DECISIONS = (
    ast.If,
    ast.IfExp,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ExceptHandler,
    ast.match_case,
)


@dataclass(frozen=True)
class Complexity:
    modules: tuple[str, ...]
    lines: int
    functions: int
    cyclomatic: int
    max_function: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decisions(node: ast.AST) -> int:
    count = 0
    for child in ast.walk(node):
        if isinstance(child, _DECISIONS):
            count += 1
        elif isinstance(child, ast.comprehension):
            count += 1 + len(child.ifs)
        elif isinstance(child, ast.BoolOp):
            count += len(child.values) - 1
    return count


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def logical_lines(source: str, tree: ast.AST) -> int:
    skip = _docstring_lines(tree)
    return sum(
        1
        for number, line in enumerate(source.splitlines(), start=1)
        if number not in skip and line.strip() and not line.strip().startswith("#")
    )


def _own_modules(module: ModuleType) -> list[ModuleType]:
    """``module`` and the sibling modules of its package it imports, transitively."""
    package = module.__name__.rpartition(".")[0]
    excluded = {f"{package}.base"}
    seen: dict[str, ModuleType] = {}
    pending = [module]
    while pending:
        current = pending.pop()
        if current.__name__ in seen:
            continue
        seen[current.__name__] = current
        tree = ast.parse(inspect.getsource(current))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                name = f"{package}.{node.module}"
                if name not in excluded and name in sys.modules:
                    pending.append(sys.modules[name])
    return sorted(seen.values(), key=lambda m: m.__name__)


def measure(cls: type) -> Complexity:
    """Measure the code of the module that defines ``cls`` (see the module docstring)."""
    module = sys.modules[cls.__module__]
    modules = _own_modules(module) if module.__package__ else [module]
    lines = functions = cyclomatic = max_function = 0
    for mod in modules:
        source = inspect.getsource(mod)
        tree = ast.parse(source)
        lines += logical_lines(source, tree)
        for func in _functions(tree):
            own = 1 + _decisions(func)
            functions += 1
            cyclomatic += own
            max_function = max(max_function, own)
    names = tuple(m.__name__.rpartition(".")[2] for m in modules)
    return Complexity(names, lines, functions, cyclomatic, max_function)
