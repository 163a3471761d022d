"""Every countbench report a test leaves in its tmp_path must validate against the schema
(except in tests marked ``invalid_reports``, which write broken ones on purpose)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from countbench.reports.load import load_report


def _countbench_reports(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # not JSON, or a deliberately broken file of a bad-input test
        tool = data.get("tool") if isinstance(data, dict) else None
        if (
            isinstance(tool, dict)
            and tool.get("name") == "countbench"
            and "results" in data
            and data.get("schema_version") == 1
        ):
            found.append(path)
    return found


@pytest.fixture(autouse=True)
def _reports_validate(request: pytest.FixtureRequest) -> Iterator[None]:
    # Asked for before the test runs, so tmp_path is torn down after this fixture.
    folder: Path | None = (
        request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    )
    yield
    if folder is None or request.node.get_closest_marker("invalid_reports"):
        return
    for path in _countbench_reports(folder):
        load_report(path)  # raises ReportError with the first schema violation
