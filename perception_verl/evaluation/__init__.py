"""Evaluation: benchmark scoring from verl validation dumps, McNemar between runs, run reports."""
