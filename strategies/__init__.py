"""What countbench measures: one module per counting strategy."""
