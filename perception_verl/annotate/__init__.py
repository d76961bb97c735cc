"""Collect visual annotations for new data: distil solutions, keep verified ones, extract facts."""
