"""One error hierarchy: every error countbench reports in one line is a CountbenchError,
and the command line maps it to its exit status in one place."""

from __future__ import annotations

import pytest
import typer

from countbench.bench import cli
from countbench.bench.ab import ABUsageError
from countbench.bench.chaos_cli import StrategyCrashed
from countbench.bench.drivers import DriverError
from countbench.bench.faults.runner import RealFaultError, RealFaultRunFailed
from countbench.bench.faults.targets import FaultTargetError
from countbench.bench.memory import ScaleUsageError
from countbench.bench.options import UsageProblem
from countbench.bench.servers.redis_server import RedisUnavailable
from countbench.bench.sim import SimUsageError
from countbench.bench.workload import SpecError
from countbench.reports.json_report import ReportPathError
from countbench.reports.load import ReportError
from countbench.strategies.central_protocol import CentralServiceError
from countbench.strategies.errors import CountbenchError
from countbench.strategies.registry import UnknownStrategy

CASES: list[tuple[type[Exception], int]] = [
    (UsageProblem, 2),
    (SpecError, 2),
    (UnknownStrategy, 2),
    (ReportPathError, 2),
    (ReportError, 2),
    (SimUsageError, 2),
    (ScaleUsageError, 2),
    (RealFaultError, 2),
    (FaultTargetError, 2),
    (ABUsageError, 2),
    (RealFaultRunFailed, 1),
    (StrategyCrashed, 1),
    (DriverError, 1),
    (RedisUnavailable, 1),
    (CentralServiceError, 1),
]


def _raising(exc: Exception) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize(("cls", "status"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_every_error_is_one_line_with_its_status(
    cls: type[Exception],
    status: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert issubclass(cls, CountbenchError)
    exc = (
        cls("strategy 'x' raised", ValueError("boom"))
        if cls is StrategyCrashed
        else cls("bad thing")
    )
    monkeypatch.setattr(cli, "app", _raising(exc))
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == status
    err = capsys.readouterr().err
    assert err.startswith("countbench: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_an_unexpected_error_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything else is a bug: main does not turn it into a one-line message."""
    monkeypatch.setattr(cli, "app", _raising(KeyError("bug")))
    with pytest.raises(KeyError):
        cli.main([])
