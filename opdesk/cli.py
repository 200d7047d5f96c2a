"""The ``opdesk`` command.

``opdesk`` starts the console on the desk (the embedded demo desk with no configuration);
``opdesk --headless`` runs the same desk with no UI; subcommands live in ``opdesk.commands``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from opdesk import __version__
from opdesk.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opdesk",
        description="A trading desk in a terminal. With no arguments: the console on the demo desk.",
    )
    parser.add_argument("--version", action="version", version=f"opdesk {__version__}")
    parser.add_argument("--config", metavar="PATH", help="desk config file (TOML); also $OPDESK_CONFIG")
    parser.add_argument("--headless", action="store_true", help="run the desk without the console")
    parser.add_argument(
        "--record", metavar="FILE", help="headless: append every bus event as JSON lines to FILE ('-' = stdout)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _run_desk(args: argparse.Namespace) -> int:
    from engines.config import load_config

    config = load_config(args.config)
    if args.headless:
        from engines.headless import main as headless_main

        return headless_main(config, args.record)
    from console.main import run_console

    return run_console(config)


def main(argv: list[str] | None = None) -> int:
    from engines.config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return _run_desk(args)
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"opdesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
