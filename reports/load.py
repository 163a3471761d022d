"""Reading a saved report back: every way a file can fail to be one is one line of text.

:func:`load_report` returns the report dict only when the file is a countbench report of
the schema version this countbench reads (:data:`SCHEMA_VERSION`) and it validates
against ``schema.json`` (shipped beside this module, JSON Schema draft 2020-12).
Otherwise it raises :class:`ReportError`, whose message is one line naming the file and
what is wrong: missing, a directory, unreadable, not JSON, truncated JSON, another tool's
JSON (a pyperf file is recognised and named), another schema version, or the first schema
violation with its JSON path.
"""

from __future__ import annotations

import functools
import json
import math
import os
import stat
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..strategies.errors import UsageError

SCHEMA_VERSION = 1
TOOL_NAME = "countbench"
_MAX_MESSAGE = 160  # characters of a schema error's own message kept in the one line


class ReportError(ValueError, UsageError):
    """A file that is not a readable countbench report; the message is one line."""


class ReportUsageError(ReportError):
    """Bad input to a report command (a format, a threshold); the message is one line.

    A subclass of :class:`ReportError`, so catching ``ReportError`` covers both."""


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` with its whitespace runs folded to single spaces, cut to ``limit`` chars."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of report version :data:`SCHEMA_VERSION`, read from package data."""
    text = (resources.files("countbench.reports") / "schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> Any:
    import jsonschema  # type: ignore[import-untyped]  # imported on first use: a slow import

    return jsonschema.Draft202012Validator(schema())


#: The largest file read as a report, scan or chaos result.
MAX_REPORT_BYTES = 64 << 20


def read_input(path: Path, what: str, limit: int, error: type[Exception]) -> bytes:
    """The bytes of the user's file ``path`` (a ``what``), at most ``limit`` of them;
    ``error`` with one line when it is missing, a folder, unreadable or larger (a device
    such as /dev/zero is read only that far)."""
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode) or stat.S_ISSOCK(os.stat(path).st_mode):
            raise error(f"{path} is a pipe or a socket, not a {what}")  # opening one waits
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path} is a directory, not a {what}") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{path} is larger than {limit:,} bytes: too large for a {what}")
    return data


def _read_text(path: Path) -> str:
    data = read_input(path, "report file", MAX_REPORT_BYTES, ReportError)
    if data[:2] == b"\x1f\x8b":
        raise ReportError(f"{path} is gzip-compressed; countbench reads plain JSON")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path} is not JSON (not UTF-8 text)") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number as a float, refused when it overflows to infinity (1e400)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _parse(path: Path, text: str) -> Any:
    if not text.strip():
        raise ReportError(f"{path} is empty, not a report")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        # The text ran out: an error at its very end, or a string still open at the end.
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            lines = text.rstrip().count("\n") + 1
            raise ReportError(f"{path} is truncated JSON (it stops at line {lines})") from None
        where = f"line {exc.lineno} column {exc.colno}"
        raise ReportError(f"{path} is not JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise ReportError(f"{path} nests JSON too deep to be a report") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ReportError(f"{path} is not a usable JSON report: {one_line(str(exc), 80)}") from None


#: The other JSON files countbench writes, by their ``kind``: what each one is.
OTHER_KINDS = {
    "countbench-chaos": "chaos result (countbench chaos --json; plot reads it)",
    "countbench-scale": "scale curve (countbench scale --json; plot reads it)",
    "countbench-ab": "A/B result (countbench ab --json)",
    "countbench-gate-check": "gate check (countbench gate-check --json)",
    "countbench-diff": "diff (countbench diff --format json)",
    "countbench-trend": "trend (countbench diff --trend NAME --format json)",
}

_JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _is_pyperf(document: Mapping[str, Any]) -> bool:
    return isinstance(document.get("benchmarks"), list) and "version" in document


def identify(document: Any, path: Path | str) -> None:
    """Raise :class:`ReportError` unless ``document`` is a countbench report of the schema
    version this countbench reads; says whose file it is when it can tell."""
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "value")
        raise ReportError(f"{path} holds a JSON {kind}, not a countbench report")
    tool = document.get("tool")
    name = tool.get("name") if isinstance(tool, dict) else None
    other = document.get("kind")
    if isinstance(tool, dict) and tool.get("command") == "chaos":
        other = "countbench-chaos"
    if isinstance(other, str) and other in OTHER_KINDS:
        raise ReportError(
            f"{path} is countbench's {OTHER_KINDS[other]}, not a run report "
            "(the JSON of run or compare)"
        )
    if "schema_version" not in document or name != TOOL_NAME:
        if _is_pyperf(document):
            raise ReportError(f"{path}: this is a pyperf file, not a countbench report")
        if isinstance(name, str) and name != TOOL_NAME:
            raise ReportError(
                f"{path}: this is a {one_line(name, 40)} file, not a countbench report"
            )
        missing = "schema_version" if "schema_version" not in document else "tool.name"
        raise ReportError(f"{path} is not a countbench report (no {missing})")
    version = document["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        shown = one_line(json.dumps(version), 40)
        raise ReportError(
            f"{path}: report schema version {shown}; this countbench reads {SCHEMA_VERSION}"
        )


def validate(document: Any, path: Path | str = "report") -> dict[str, Any]:
    """``document`` itself when it is a valid countbench report; else :class:`ReportError`
    with the most relevant schema violation (jsonschema's ``best_match``): its JSON path
    and message. Strategy names must also be unique within ``results``."""
    identify(document, path)
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise ReportError(
            f"{path}: schema violation at {error.json_path}: {one_line(error.message)}"
        )
    scan = document.get("scan")
    if scan and {k: v for k, v in document.items() if k != "scan"} != scan["points"][0]["report"]:
        raise ReportError(
            f"{path}: $.scan.points[0].report differs from the top level, which repeats it"
        )
    labels = [point_label(p, v) for p, v, _ in scan_points(document)]
    if len(set(labels)) < len(labels):
        twice = next(label for label in labels if labels.count(label) > 1)
        raise ReportError(f"{path}: $.scan.points: {twice} is scanned twice")
    for where, point in _reports_within(document):
        seen: set[str] = set()
        for index, result in enumerate(point["results"]):
            name = result["strategy"]["name"]
            if name in seen:
                raise ReportError(
                    f"{path}: {where}.results[{index}]: strategy {name!r} appears twice"
                )
            seen.add(name)
    report: dict[str, Any] = document
    return report


def scan_points(report: Mapping[str, Any]) -> list[tuple[str, Any, Mapping[str, Any]]]:
    """(parameter, value, report) for each point of a ``--param`` scan, in the order
    scanned; for a report without a scan, one entry: ``("", "", report)``. Every export
    goes through this, so every point reaches every export."""
    scan = report.get("scan")
    if not scan:
        return [("", "", report)]
    return [(scan["parameter"], point["value"], point["report"]) for point in scan["points"]]


def point_label(parameter: str, value: Any) -> str:
    """How a scan point is named in exports: ``workers=2``; empty without a scan."""
    return f"{parameter}={value}" if parameter else ""


def named_results(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Each strategy's result by name; in a ``--param`` scan, every point's, by
    ``name @ parameter=value``, so that two scans pair point by point."""
    found = {}
    for parameter, value, point in scan_points(report):
        label = point_label(parameter, value)
        for result in point["results"]:
            name = result["strategy"]["name"]
            found[f"{name} @ {label}" if label else name] = result
    return found


def _reports_within(report: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The report and each scan point's report, with their JSON paths."""
    points = (report.get("scan") or {}).get("points", [])
    return [("$", report)] + [
        (f"$.scan.points[{i}].report", point["report"]) for i, point in enumerate(points)
    ]


def load_report(path: Path) -> dict[str, Any]:
    """The report stored at ``path``, validated; :class:`ReportError` (one line) otherwise.

    Never writes anything. The returned dict is exactly the file's JSON."""
    return validate(_parse(path, _read_text(path)), path)
