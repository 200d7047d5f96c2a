"""remote engine."""
