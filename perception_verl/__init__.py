"""perception-verl: GRPO with a visual perception reward for verl (Perception-R1, arXiv 2506.07218)."""

__version__ = "0.1.0"
