"""Before the load: options, checks before the start, shape selection, the parent watch."""
