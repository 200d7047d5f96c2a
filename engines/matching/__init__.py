"""matching engine."""
