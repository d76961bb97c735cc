"""Python side of the recipes: compose a verl trainer config, dry-run checks, the CPU smoke run."""
