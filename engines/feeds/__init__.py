"""feeds engine."""
