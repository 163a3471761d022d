"""How countbench shows results: tables, the JSON report and its exporters."""
