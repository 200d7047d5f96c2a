"""Simulated markets for a desk with no network: reference prices and taker flow."""
