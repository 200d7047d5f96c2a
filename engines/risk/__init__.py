"""risk engine."""
