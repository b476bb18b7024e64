"""Benchmarks that print figures: run one with ``.venv/bin/python -m bench.NAME``, all with ``make bench``."""
