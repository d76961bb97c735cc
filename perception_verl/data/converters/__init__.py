"""One converter module per evaluation benchmark (its hub layout into a BenchmarkItem, and its SPEC);
the registry is :data:`perception_verl.data.benchmarks.BENCHMARKS`."""
