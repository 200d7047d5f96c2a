"""fix engine."""
