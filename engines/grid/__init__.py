"""grid engine."""
