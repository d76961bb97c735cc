"""Data preparation commands: ``perception-verl build-geometry3k`` and ``build-benchmarks``."""
