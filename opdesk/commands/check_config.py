"""``opdesk check-config PATH``: validate a config file and say what it sets up."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate a desk config file and print the result")
    p.add_argument("path", help="TOML config file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engines.config import load_config

    cfg = load_config(args.path)  # ConfigError is reported by the CLI with exit status 2
    print(f"{args.path}: OK")
    print(f"  desk {cfg.desk.name!r}, data in {cfg.desk.path}")
    print(f"  instruments: {', '.join(cfg.instruments) or 'none'}")
    print(f"  market makers: {', '.join(b.name for b in cfg.mm) or 'none'}")
    print(f"  grid bots: {', '.join(b.name for b in cfg.grid) or 'none'}")
    print(f"  FIX sessions: {', '.join(s.name for s in cfg.fix.sessions) or 'none'}")
    return 0
