"""Offline analysis: McNemar's test on paired perception labels, and labelling saved generations."""
