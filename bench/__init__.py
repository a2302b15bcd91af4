"""Benchmarks: each compares alternatives side by side in one run and prints medians and ratios.

Run them all with `make bench` (or `python -m bench [NAME...]`); results are recorded in
docs/BENCHMARKS.md together with the command that produced them.
"""
