"""Command-line data preparation scripts: thin wrappers over ``perception-verl`` subcommands."""
