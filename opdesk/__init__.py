"""opdesk: a trading desk in a terminal."""

__version__ = "0.1.0"
