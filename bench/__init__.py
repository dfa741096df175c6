"""Benchmarks: each prints its figures; run as `python bench/<name>.py`."""
