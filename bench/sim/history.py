"""The operation history of a run, as JSON Lines an outside checker can read.

The format is documented in ``docs/history.md`` and its JSON Schema ships as
``countbench/reports/history.schema.json``. Lines come in the order the simulator
processed them: a ``header``; for every client operation an ``invoke`` and a ``complete``
line (adjacent for an operation a node applies at once; apart for a request that travels);
``vanish``, ``fault``, ``restart`` and ``lost`` lines on the same virtual clock; one
``final`` line per node; an ``end`` line with countbench's own verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT, VERSION = "countbench-history", 1


class History:
    """Collects a run's history lines (plain dicts) in processing order."""

    __slots__ = ("judged", "lines", "ops")

    def __init__(self, header: dict[str, Any]) -> None:
        self.lines: list[dict[str, Any]] = [
            {"type": "header", "format": FORMAT, "version": VERSION, **header}
        ]
        self.ops = 0
        #: countbench's own judgement of each answered read it checks (history index ->
        #: outside the allowed values); not written: what an outside checker recomputes
        self.judged: dict[int, bool] = {}

    def invoke(self, t: float, process: str, node: int, kind: str, user: str | None) -> int:
        """An operation starts; its index (from 0, in invocation order)."""
        index = self.ops
        self.ops += 1
        self.lines.append(
            {
                "type": "invoke",
                "index": index,
                "time": t,
                "process": process,
                "node": node,
                "kind": kind,
                "user": user,
            }
        )
        return index

    def complete(
        self,
        index: int,
        t: float,
        outcome: str,
        value: int | None = None,
        partial: bool = False,
        attempts: int = 1,
    ) -> None:
        line: dict[str, Any] = {
            "type": "complete",
            "index": index,
            "time": t,
            "outcome": outcome,
            "value": value,
        }
        if partial:
            line["partial"] = True
        if attempts != 1:
            line["attempts"] = attempts
        self.lines.append(line)

    def event(self, kind: str, t: float, **fields: Any) -> None:
        self.lines.append({"type": kind, "time": t, **fields})

    def write(self, path: Path, force: bool) -> None:
        """Write every line to ``path`` atomically (an existing file only with ``force``)."""
        from ...reports.json_report import check_output_path, write_bytes_atomic

        check_output_path(path, force)
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in self.lines)
        write_bytes_atomic(path, body.encode("utf-8"), force)
