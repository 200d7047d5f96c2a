"""Screens: the main desk screen, modal confirmations and pickers, and detail views."""
