"""The parts of scripts/bench.py, one module per section (the entry point stays scripts/bench.py)."""
