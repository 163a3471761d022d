"""Memory per online user and replicated state size (``bench/memory.py``,
``bench/scale_cli.py``): small user counts here; the 1,000,000-user point is for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from countbench.bench.memory import ScaleUsageError, measure_memory
from countbench.bench.scale_cli import fit_growth, parse_param, scale, scale_curve

USERS = "users=1000,10000,50000"


@pytest.fixture(scope="module")
def session_curve() -> dict[str, object]:
    return scale_curve("session", USERS)


@pytest.fixture(scope="module")
def local_curve() -> dict[str, object]:
    return scale_curve("local", USERS)


def _figure(curve: dict[str, object], key: str) -> list[float]:
    return [float(point[key]) for point in curve["points"]]  # type: ignore[attr-defined]


def test_session_memory_grows_with_users(session_curve: dict[str, object]) -> None:
    traced = _figure(session_curve, "traced_bytes")
    assert 0 < traced[0] < traced[1] < traced[2]
    per_user = _figure(session_curve, "traced_bytes_per_user")
    # A user id, its last-seen time and a heap entry: tens to a few hundred bytes each.
    assert all(50 < b < 500 for b in per_user)
    assert all(b > 0 for b in _figure(session_curve, "rss_bytes"))
    counts = [point["count"] for point in session_curve["points"]]  # type: ignore[attr-defined]
    assert counts == [1000, 10000, 50000]


def test_local_memory_does_not_grow(local_curve: dict[str, object]) -> None:
    traced = _figure(local_curve, "traced_bytes")
    assert all(t > 0 for t in traced)
    assert max(traced) - min(traced) <= 0.05 * max(traced)
    assert max(traced) < 10_000


def test_growth_fits(session_curve: dict[str, object], local_curve: dict[str, object]) -> None:
    assert session_curve["fits"]["traced_bytes"]["best"] == "linear"  # type: ignore[index]
    assert local_curve["fits"]["traced_bytes"]["best"] == "constant"  # type: ignore[index]


def test_fit_growth_on_exact_curves() -> None:
    import math

    xs = [10.0, 100.0, 1000.0, 10000.0]
    assert fit_growth(xs, [5.0 for _ in xs])["best"] == "constant"
    assert fit_growth(xs, [3 + 2 * math.log(x) for x in xs])["best"] == "log n"
    assert fit_growth(xs, [100 + 7 * x for x in xs])["best"] == "linear"
    assert fit_growth(xs, [x * x + 1 for x in xs])["best"] == "quadratic"
    assert fit_growth(xs[:2], [1.0, 2.0])["best"] is None


def test_pncounter_state_grows_with_nodes() -> None:
    curve = scale_curve("pncounter", "nodes=3,10,30")
    state = _figure(curve, "state_bytes")
    sync = _figure(curve, "sync_bytes")
    assert 0 < state[0] < state[1] < state[2]
    assert 0 < sync[0] < sync[1] < sync[2]
    assert all(t > 0 for t in _figure(curve, "merge_seconds"))
    assert curve["fits"]["sync_bytes"]["best"] == "linear"  # type: ignore[index]


def test_replicated_memory_reports_sync_and_state() -> None:
    result = measure_memory("pncounter", 2000, nodes=3)
    assert result["kind"] == "replicated" and result["count"] == 2000
    assert result["sync_messages"] == 1 and result["sync_bytes"] > 0
    assert result["state_bytes"] > 0


@pytest.mark.parametrize(
    ("strategy", "param", "words"),
    [
        ("session", "users", "param must be"),
        ("session", "people=1,2", "param must be"),
        ("session", "users=10,x", "not a whole number"),
        ("session", "users=0,10", "out of range"),
        ("session", "users=10,10", "twice"),
        ("session", "nodes=3,10", "replicated"),
        ("nope", "users=10", "unknown strategy"),
        ("central", "users=10", "in-process and Redis"),
    ],
)
def test_bad_input_is_one_line(strategy: str, param: str, words: str) -> None:
    with pytest.raises(ScaleUsageError) as caught:
        scale_curve(strategy, param)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message


def test_parse_param_sorts() -> None:
    assert parse_param("nodes=30, 3,10") == ("nodes", [3, 10, 30])


def test_scale_command_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "scale.json"
    scale("local", "users=100,200,300", json=path)
    report = json.loads(path.read_text())
    assert report["kind"] == "countbench-scale" and report["strategy"] == "local"
    assert [p["users"] for p in report["points"]] == [100, 200, 300]
    assert "growth" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exists"):
        scale("local", "users=100", json=path)


def test_redis_memory_grows_with_users() -> None:
    small = measure_memory("redis-zset", 500)
    large = measure_memory("redis-zset", 5000)
    assert small["kind"] == "redis" and large["count"] == 5000
    assert 0 < small["redis_bytes"] < large["redis_bytes"]


# -- churn: replicas replaced (retired=...) ---------------------------------------------------

CHURN = "retired=0,20,80,200"


@pytest.fixture(scope="module")
def churn_curves() -> dict[str, dict[str, object]]:
    return {name: scale_curve(name, CHURN, users_per_node=10) for name in ("pncounter", "compact")}


def test_churn_loses_no_count(churn_curves: dict[str, dict[str, object]]) -> None:
    for curve in churn_curves.values():
        for point in curve["points"]:  # type: ignore[attr-defined]
            # 3 live replicas + every replacement: 10 logins each, 5 logouts per leaver.
            assert point["expected"] == 10 * (3 + point["retired"]) - 5 * point["retired"]
            assert point["counts"] == [point["expected"]]
            assert point["newcomer_count"] == point["expected"]


def test_compact_state_stays_bounded_while_pncounters_grows(
    churn_curves: dict[str, dict[str, object]],
) -> None:
    pn, compact = churn_curves["pncounter"], churn_curves["compact"]
    assert [p["folds_retired"] for p in compact["points"]] == [True] * 4  # type: ignore[attr-defined]
    assert [p["folds_retired"] for p in pn["points"]] == [False] * 4  # type: ignore[attr-defined]
    pn_sync, compact_sync = _figure(pn, "sync_bytes"), _figure(compact, "sync_bytes")
    pn_state, compact_state = _figure(pn, "state_bytes"), _figure(compact, "state_bytes")
    # pncounter keeps an entry per replica that ever wrote: it grows at every step.
    assert pn_sync[0] < pn_sync[1] < pn_sync[2] < pn_sync[3]
    assert pn_state[0] < pn_state[1] < pn_state[2] < pn_state[3]
    assert pn["fits"]["sync_bytes"]["best"] == "linear"  # type: ignore[index]
    # compact keeps the live replicas' entries only: flat, whatever the churn.
    assert max(compact_sync) <= 1.5 * min(compact_sync)
    assert max(compact_state) <= 1.5 * min(compact_state)
    assert pn_sync[-1] > 10 * compact_sync[-1]
    assert pn_state[-1] > 5 * compact_state[-1]


def test_churn_bad_input_is_one_line() -> None:
    with pytest.raises(ScaleUsageError, match="replicated") as caught:
        scale_curve("session", "retired=0,10")
    assert "\n" not in str(caught.value)
    with pytest.raises(ScaleUsageError, match="out of range"):
        parse_param("retired=-1,10")
    assert parse_param("retired=10,0") == ("retired", [0, 10])
