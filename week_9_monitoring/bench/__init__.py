"""Measurement scripts: run them from the week folder, e.g. `python -m bench.benchmark`."""
