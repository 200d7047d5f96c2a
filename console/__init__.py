"""The opdesk operator console (Textual)."""
