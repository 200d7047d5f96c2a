"""CLI subcommands: one module each, with ``register(subparsers)`` and a handler set as ``func``.

Modules here import their heavy dependencies inside the handler, so ``opdesk --headless`` loads only
what the headless desk needs (never textual or rich).
"""

#: Subcommand modules, in the order ``opdesk --help`` lists them.
COMMANDS = [
    "opdesk.commands.check_config",
    "opdesk.commands.remote",
    "opdesk.commands.kill",
    "opdesk.commands.rearm",
    "opdesk.commands.status",
    "opdesk.commands.grid",
]
