"""Benchmarks of the reward path; run from the repository root as ``python -m benchmarks.NAME``."""
