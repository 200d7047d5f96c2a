"""mm engine."""
