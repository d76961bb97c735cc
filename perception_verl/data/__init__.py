"""Row schema, annotation parsing and dataset conversion."""
