"""Benchmarks (pytest-benchmark); each reports ratios against a same-run baseline."""
