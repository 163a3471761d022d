"""Memory per online user and replicated state size (``bench/memory.py``,
``bench/scale_cli.py``): small user counts here; the 1,000,000-user point is for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from countbench.bench import memory
from countbench.bench.memory import ScaleUsageError, measure_churn, measure_memory, measure_nodes
from countbench.bench.scale_cli import fit_growth, parse_param, scale, scale_curve
from countbench.bench.sim.speed import IdleReplica
from countbench.strategies.base import (
    Consistency,
    Message,
    Mode,
    Replica,
    ReplicatedStrategy,
    StrategyConfig,
)

pytestmark = pytest.mark.slow  # servers, worker processes or whole commands: see pyproject

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
    # compact's churn figures (bytes at 0/10/100/1000 retired; measured): 10 % apart,
    # no trend: constant, not the slightly rising line a least-squares fit draws
    retired = [1.0, 11.0, 101.0, 1001.0]  # x = retired + 1, as scale fits it
    assert fit_growth(retired, [1284, 1224, 1152, 1268])["best"] == "constant"
    assert fit_growth(retired, [1046, 3123, 24063, 224307])["best"] == "linear"


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
    assert result["state_bytes"] > 0 and result["newcomer_count"] == 2000


def test_delta_strategy_is_measured_through_its_protocol() -> None:
    # vclock sends its whole state only every 4th sync (deltas, often nothing, otherwise):
    # the measurement must still bring a fresh replica to the full state, count the full
    # state at its rate in the sync bytes, and time the catch-up, not a no-op merge.
    small, large = (measure_nodes("vclock", nodes, users_per_node=30) for nodes in (2, 4))
    for point in (small, large):
        assert point["newcomer_count"] == point["count"] == point["users"]
        assert point["sync_bytes"] > 0 and point["merge_messages"] >= 1
        assert point["merge_seconds"] > 1e-6
    assert small["state_bytes"] < large["state_bytes"]
    assert small["sync_bytes"] < large["sync_bytes"]
    users = measure_memory("vclock", 200, nodes=3)
    assert users["newcomer_count"] == 200 and users["sync_bytes"] > 0
    assert users["state_bytes"] > 200 * 50  # a user id and an event each, at least


def _pull_strategy() -> type[ReplicatedStrategy]:
    """A replicated strategy whose ``sync`` carries no state: a digest (the users it
    knows) that a peer answers with the users the sender lacks."""

    class PullReplica(IdleReplica):  # its users, and a digest of them at each sync
        def sync(self, now: float) -> list[Message]:
            return [Message(self.node_id, None, b"D" + json.dumps(sorted(self.users)).encode())]

        def receive(self, message: Message, now: float) -> list[Message]:
            rows = json.loads(message.body[1:])
            if message.body[:1] == b"U":
                self.users.update(rows)
                return []
            lacks = sorted(self.users.difference(rows))
            return [Message(self.node_id, message.src, b"U" + json.dumps(lacks).encode())]

    class PullStrategy(ReplicatedStrategy):
        name = "test-pull"
        summary = "digest and pull"
        consistency = Consistency.EVENTUAL
        modes = frozenset({Mode.THREAD})

        def replica(self, node_id: int) -> Replica:
            return PullReplica(node_id)

    return PullStrategy


def test_pull_protocol_catches_up_through_replies() -> None:
    strategy = _pull_strategy()(StrategyConfig(nodes=4))
    replicas = [strategy.replica(i) for i in range(3)]
    for i, replica in enumerate(replicas):
        replica.login(f"user-{i}", memory.NOW)
    memory.spread(replicas)
    assert [r.count(memory.NOW) for r in replicas] == [3, 3, 3]
    messages = memory.catch_up(strategy, 3, replicas[0], memory.NOW)
    bodies = [m.body[:1] for m in messages]
    assert b"U" in bodies  # the state came in a reply to the newcomer's digest
    fresh = strategy.replica(3)
    for message in messages:
        fresh.receive(message, memory.NOW)
    assert fresh.count(memory.NOW) == 3
    sync_bytes, sync_messages = memory.sync_cost(replicas, replicas[2], memory.NOW)
    assert sync_messages == 3  # its digest, and an (empty) answer from each of the others
    digest = len(replicas[2].sync(memory.NOW)[0].body)
    assert sync_bytes == digest + 2 * len(b"U[]")


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


def test_churn_of_a_delta_strategy_is_exact() -> None:
    # vclock's gossip is deltas with a full state every 4th sync: the churn's exchanges
    # and the newcomer's catch-up must still carry every login and logout.
    point = measure_churn("vclock", 3, users_per_node=10)
    assert point["counts"] == [point["expected"]] == [10 * 6 - 5 * 3]
    assert point["newcomer_count"] == point["expected"]
    assert point["sync_bytes"] > 0


def test_churn_bad_input_is_one_line() -> None:
    with pytest.raises(ScaleUsageError, match="replicated") as caught:
        scale_curve("session", "retired=0,10")
    assert "\n" not in str(caught.value)
    with pytest.raises(ScaleUsageError, match="out of range"):
        parse_param("retired=-1,10")
    assert parse_param("retired=10,0") == ("retired", [0, 10])
