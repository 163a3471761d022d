"""countbench's conformance kit, run from the plug-in's own test suite."""

from countbench.bench.testing import check_delivery, check_node, check_simulation

from countbench_hll import HyperLogLogStrategy


def test_node_contract() -> None:
    check_node(HyperLogLogStrategy)


def test_any_delivery_converges() -> None:
    check_delivery(HyperLogLogStrategy)


def test_the_simulator_runs_it() -> None:
    check_simulation(HyperLogLogStrategy)
