"""opdesk engines: asyncio trading engines that talk only through the event bus.

Nothing under this package may import textual, rich or the console (tests/test_import_hygiene.py).
"""
