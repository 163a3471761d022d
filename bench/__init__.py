"""How countbench measures: the CLI, workloads, drivers and timing."""
