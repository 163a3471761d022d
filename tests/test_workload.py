"""The workload generator: determinism, exact truth, the shape of user sessions, the spec."""

from __future__ import annotations

import itertools
import os
import statistics
from collections import Counter
from pathlib import Path

import pytest

from countbench.bench import shaped
from countbench.bench.workload import Op, Shape, SpecError, Workload, WorkloadSpec, build

SMALL = WorkloadSpec(users=50, operations=2_000, workers=3, nodes=3, sync_every=100, seed=3)


def test_same_seed_same_streams_other_seed_other_streams() -> None:
    a, b = build(SMALL), build(SMALL)
    assert a.mixed == b.mixed and a.writes == b.writes and a.reads == b.reads
    assert a.online_after_mixed == b.online_after_mixed
    c = build(WorkloadSpec(**{**SMALL.to_dict(), "seed": 4}))
    assert c.mixed != a.mixed


def test_truth_is_the_replay_of_logins_and_logouts() -> None:
    workload = build(SMALL)
    online: set[str] = set()
    for stream in workload.mixed:
        for kind, user in zip(stream.kinds, stream.users, strict=True):
            if kind is Op.LOGIN:
                assert user not in online, "a login of a user already online"
                online.add(user)
            elif kind is Op.LOGOUT:
                assert user in online, "a logout of a user not online"
                online.remove(user)
            elif kind is Op.HEARTBEAT:
                assert user in online, "a heartbeat of a user not online"
    assert online == workload.online_after_mixed
    assert 0 < len(online) < SMALL.users


def test_each_user_belongs_to_one_worker_and_time_never_goes_back() -> None:
    workload = build(SMALL)
    owner: dict[str, int] = {}
    for index, stream in enumerate(workload.mixed):
        assert stream.times == sorted(stream.times)
        for user in stream.users:
            if user:
                assert owner.setdefault(user, index) == index


def test_online_users_heartbeat_within_the_interval() -> None:
    spec = WorkloadSpec(users=20, operations=3_000, workers=1, heartbeat_interval=30.0, seed=9)
    stream = build(spec).mixed[0]
    last: dict[str, float] = {}
    for kind, user, now in zip(stream.kinds, stream.users, stream.times, strict=True):
        if kind is Op.LOGIN:
            last[user] = now
        elif kind in (Op.HEARTBEAT, Op.LOGOUT):
            assert now - last[user] <= spec.heartbeat_interval + 1e-9
            last[user] = now
            if kind is Op.LOGOUT:
                del last[user]


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.5, 0.9])
def test_read_ratio_is_respected(ratio: float) -> None:
    spec = WorkloadSpec(users=200, operations=5_000, workers=2, read_ratio=ratio, seed=1)
    kinds = Counter(k for s in build(spec).mixed for k in s.kinds if k is not Op.SYNC)
    share = kinds[Op.READ] / sum(kinds.values())
    assert abs(share - ratio) < 0.03


def test_all_reads_and_write_stream_contents() -> None:
    spec = WorkloadSpec(users=10, operations=100, workers=2, read_ratio=1.0)
    workload = build(spec)
    assert all(k in (Op.READ, Op.SYNC) for s in workload.mixed for k in s.kinds)
    assert workload.online_after_mixed == frozenset()
    writes = Counter(k for s in build(SMALL).writes for k in s.kinds)
    assert set(writes) == {Op.LOGIN, Op.LOGOUT, Op.SYNC}
    assert writes[Op.LOGIN] + writes[Op.LOGOUT] == SMALL.operations * SMALL.workers


def test_syncs_every_n_operations_and_at_the_end() -> None:
    stream = build(SMALL).writes[0]
    positions = [i for i, k in enumerate(stream.kinds) if k is Op.SYNC]
    assert positions[0] == SMALL.sync_every
    assert stream.kinds[-1] is Op.SYNC
    assert stream.client_ops == len(stream) - len(positions)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("users", 0),
        ("operations", -1),
        ("workers", 0),
        ("nodes", 0),
        ("sync_every", 0),
        ("read_ratio", 1.5),
        ("read_ratio", -0.1),
        ("session_length", 0),
        ("heartbeat_interval", -1.0),
        ("session_timeout", 0.0),
        ("users", "many"),
        ("workers", True),
        ("seed", 1.5),
    ],
)
def test_invalid_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(SpecError, match=field):
        WorkloadSpec().with_overrides({field: value})


def test_fewer_users_than_workers_is_refused() -> None:
    with pytest.raises(SpecError, match="users"):
        WorkloadSpec().with_overrides({"users": 2, "workers": 3})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(SpecError, match="unknown workload field"):
        WorkloadSpec().with_overrides({"userz": 3})


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[workload]\nusers = 40\nread_ratio = 0.25\nseed = 7\n")
    spec = WorkloadSpec.from_toml(path)
    assert (spec.users, spec.read_ratio, spec.seed) == (40, 0.25, 7)
    path.write_text("users = 41\n")
    assert WorkloadSpec.from_toml(path).users == 41


@pytest.mark.parametrize(
    ("content", "message"),
    [("users = [", "not valid TOML"), ("workers = 0", "workers"), ("colour = 1", "unknown")],
)
def test_bad_toml_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text(content)
    with pytest.raises(SpecError, match=message):
        WorkloadSpec.from_toml(path)


def test_missing_and_directory_workload_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        WorkloadSpec.from_toml(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="directory"):
        WorkloadSpec.from_toml(tmp_path)


def test_open_loop_arrivals_are_seeded_per_worker_and_keep_the_rate() -> None:
    spec = WorkloadSpec(rate=2000.0, workers=2, seed=7)
    first = spec.arrivals_for(0)
    assert first is not None
    offsets = [first.next() for _ in range(20_000)]
    assert offsets[0] == 0.0 and all(a < b for a, b in itertools.pairwise(offsets))
    gaps = statistics.fmean(b - a for a, b in itertools.pairwise(offsets))
    assert gaps == pytest.approx(1 / 1000, rel=0.03)  # each worker: half the rate
    again = spec.arrivals_for(0)
    other = spec.arrivals_for(1)
    assert again is not None and other is not None
    assert [again.next() for _ in range(100)] == offsets[:100]
    assert [other.next() for _ in range(100)] != offsets[:100]
    steady = WorkloadSpec(rate=2000.0, workers=2, arrivals="constant").arrivals_for(1)
    assert steady is not None and [steady.next() for _ in range(4)] == [0.0, 0.001, 0.002, 0.003]
    assert WorkloadSpec().arrivals_for(0) is None


def test_a_closed_loop_workload_reads_as_before_rate_existed() -> None:
    assert "rate" not in WorkloadSpec().to_dict() and "arrivals" not in WorkloadSpec().to_dict()
    opened = WorkloadSpec(rate=500.0, arrivals="constant")
    assert opened.to_dict()["rate"] == 500.0 and opened.to_dict()["arrivals"] == "constant"
    assert WorkloadSpec().with_overrides(opened.to_dict()) == opened
    for bad in (-1.0, float("nan"), float("inf"), 1e10, 0.0001, True):
        with pytest.raises(SpecError, match="rate must be 0"):
            WorkloadSpec().with_overrides({"rate": bad})


def test_a_disconnect_takes_its_share_of_the_online_users_then_brings_them_back() -> None:
    shape = Shape("disconnect", at=0.5, duration=0.1, share=0.5, spread=0.05)
    spec = WorkloadSpec(users=400, operations=4000, seed=3, shapes=(shape,), scenario="t")
    workload = build(spec)
    ((kind, low, high),) = workload.windows
    assert kind == "disconnect" and low < high
    span = low / 0.5
    before, during = workload.online_at(low - 1e-6), workload.online_at(low)
    assert during == before - round(0.5 * before)  # they vanished at once
    # They stay away (others log in meanwhile, as they would) until they reconnect.
    assert workload.online_at(low + 0.09 * span) <= 0.75 * before
    assert workload.online_at(high) >= before - 0.2 * before  # until they reconnect
    assert all(Op.VANISH not in s.kinds for s in (*workload.mixed, *workload.writes))
    assert build(spec).mixed == workload.mixed  # seeded
    # Nothing is sent for a vanished user: the streams hold fewer logouts than the unshaped.
    plain = build(WorkloadSpec(users=400, operations=4000, seed=3))
    assert plain.windows == () and plain.online_at(low) > during


def test_a_storm_logs_in_its_share_of_the_offline_users_within_its_window() -> None:
    shape = Shape("storm", at=0.4, duration=0.02, share=0.5)
    spec = WorkloadSpec(users=400, operations=4000, seed=3, shapes=(shape,), scenario="t")
    workload = build(spec)
    ((_, low, high),) = workload.windows
    before, after = workload.online_at(low - 1e-6), workload.online_at(high)
    offline = spec.users - before
    assert after - before >= 0.4 * offline  # half of them, less the few who left since
    logins = [
        t
        for s in workload.mixed
        for k, t in zip(s.kinds, s.times, strict=True)
        if k is Op.LOGIN and low <= t <= high
    ]
    assert len(logins) >= round(0.5 * offline)


def test_shapes_and_scenario_files_are_checked() -> None:
    with pytest.raises(
        SpecError, match="kind must be one of storm, disconnect, churn, skew, daily"
    ):
        Shape("flood", 0.5, 0.1, 0.5).validate()
    with pytest.raises(SpecError, match="share must be from 0 to 1"):
        WorkloadSpec().with_overrides(
            {"shapes": [{"kind": "storm", "at": 0.5, "duration": 0.1, "share": 2}]}
        )
    with pytest.raises(SpecError, match="unknown shape field"):
        WorkloadSpec().with_overrides(
            {"shapes": [{"kind": "storm", "at": 0, "duration": 0, "share": 0, "x": 1}]}
        )
    assert shaped.names() == ["churn", "daily", "disconnect", "skew", "storm"]
    for name in shaped.names():
        loaded, shapes = shaped.load(name)
        assert loaded == name and shapes
        spec = WorkloadSpec().with_overrides({"scenario": loaded, "shapes": shapes})
        assert WorkloadSpec().with_overrides(spec.to_dict()) == spec  # as a plan travels
    with pytest.raises(SpecError, match="no scenario 'nope'"):
        shaped.load("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[shape]]\nkind = 'storm'\nat = 0.5\n", "a shape needs duration, share"),
        ("description = 'x'\n", "no \\[\\[shape\\]\\]"),
        ("colour = 'red'\n[[shape]]\nkind='storm'\nat=0\nduration=0\nshare=0\n", "unknown key"),
        ("[[shape", "not valid TOML"),
    ],
)
def test_a_bad_scenario_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message) as refused:
        shaped.load(str(path))
    assert "\n" not in str(refused.value)


def _in_window(workload: Workload, kinds: set[Op]) -> Counter[str]:
    ((_, low, high),) = workload.windows
    return Counter(
        user
        for s in workload.mixed
        for kind, user, at in zip(s.kinds, s.users, s.times, strict=True)
        if kind in kinds and low <= at <= high
    )


def test_churn_makes_its_users_log_out_and_in_again_and_again() -> None:
    shape = Shape("churn", at=0.4, duration=0.2, share=0.25, factor=0.02)
    base = WorkloadSpec(users=400, operations=6000, seed=3)
    churned = _in_window(
        build(base.with_overrides({"shapes": [shape], "scenario": "t"})), {Op.LOGIN, Op.LOGOUT}
    )
    plain = build(base)
    ((_, low, high),) = build(base.with_overrides({"shapes": [shape], "scenario": "t"})).windows
    calm = Counter(
        user
        for s in plain.mixed
        for kind, user, at in zip(s.kinds, s.users, s.times, strict=True)
        if kind in (Op.LOGIN, Op.LOGOUT) and low <= at <= high
    )
    assert sum(churned.values()) > 5 * sum(calm.values())
    busiest = churned.most_common(1)[0][1]
    assert busiest >= 10  # one user's logins and logouts in the window


def test_skew_puts_most_heartbeats_on_a_few_users() -> None:
    shape = Shape("skew", at=0.3, duration=0.4, share=1.0, factor=1.2)
    workload = build(
        WorkloadSpec(users=400, operations=6000, seed=3, shapes=(shape,), scenario="t")
    )
    beats = _in_window(workload, {Op.HEARTBEAT})
    # A tenth of the users send most of the heartbeats (without the shape, under a third).
    assert sum(n for _, n in beats.most_common(40)) > 0.6 * sum(beats.values())
    plain = build(WorkloadSpec(users=400, operations=6000, seed=3))
    ((_, low, high),) = workload.windows
    calm = Counter(
        user
        for s in plain.mixed
        for kind, user, at in zip(s.kinds, s.users, s.times, strict=True)
        if kind is Op.HEARTBEAT and low <= at <= high
    )
    assert sum(n for _, n in calm.most_common(40)) < 0.3 * sum(calm.values())


def test_a_workload_file_names_a_scenario_and_gives_its_rate_as_a_whole_number(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.toml"
    path.write_text('scenario = "disconnect"\nrate = 1000\n')
    spec = WorkloadSpec.from_toml(path, shaped.load)
    assert spec.scenario == "disconnect" and spec.shapes == shaped.load("disconnect")[1]
    assert spec.rate == 1000.0 and isinstance(spec.rate, float)
    path.write_text('scenario = "nosuch"\n')
    with pytest.raises(SpecError, match="no scenario 'nosuch'"):
        WorkloadSpec.from_toml(path, shaped.load)


def test_a_scenario_that_is_a_pipe_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    try:
        with pytest.raises(SpecError, match="is a pipe or a socket"):
            shaped.load(str(fifo))
    finally:
        fifo.unlink()


def test_a_daily_curve_raises_the_population_to_a_peak_and_lets_it_fall_back() -> None:
    name, shapes = shaped.load("daily")
    workload = build(WorkloadSpec(users=400, operations=6000, seed=3, scenario=name, shapes=shapes))
    plain = build(WorkloadSpec(users=400, operations=6000, seed=3))
    ((_, low, high),) = workload.windows
    span = low / shapes[0].at
    peak = max(range(20), key=lambda k: workload.online_at(low + k * (high - low) / 20))
    at_peak = low + peak * (high - low) / 20
    assert workload.online_at(at_peak) > 1.25 * plain.online_at(at_peak)  # +36 % measured
    end = 0.99 * span
    assert workload.online_at(end) < 1.1 * plain.online_at(end)  # and back
