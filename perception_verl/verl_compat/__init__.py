"""verl's private edges, in one place: every name this package uses that verl does not export as API."""
