"""control engine."""
