"""An example countbench plug-in: ``hll``, a replicated sliding-window HyperLogLog."""

from .hll import HyperLogLogStrategy, SlidingHLL, SlidingHLLReplica

__all__ = ["HyperLogLogStrategy", "SlidingHLL", "SlidingHLLReplica"]
