"""What the bash recipes call before verl starts: the trainer config, dry-run checks, judge probe."""
