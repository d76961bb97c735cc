"""Command-line data preparation scripts (thin wrappers over ``perception_verl``)."""
