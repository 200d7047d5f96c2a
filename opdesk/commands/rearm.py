"""``opdesk rearm [--scope …] --reason TEXT [--reducing]``: explicitly lift a kill."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from opdesk.control_client import add_connection_args

    p = sub.add_parser("rearm", help="re-arm a killed scope of a running desk (ACTIVE, or REDUCING)")
    p.add_argument("--scope", default="desk", help="desk (default), bot:NAME or instrument:SYMBOL")
    p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    p.add_argument(
        "--reducing", action="store_true", help="re-arm to REDUCING (only position-reducing orders)"
    )
    add_connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from opdesk.control_client import actor, call, run_guarded

    def go(a: argparse.Namespace) -> int:
        body = {
            "scope": a.scope,
            "reason": a.reason,
            "state": "reducing" if a.reducing else "active",
            "source": "cli",
            "actor": actor(),
        }
        r = call(a, "POST", "/rearm", body)
        print(f"REARM {r['scope']}: {r['previous'].upper()} -> {r['state'].upper()}")
        for p in r["pending"]:
            print(f"  warning: cancel still unconfirmed: {p}")
        return 0

    return run_guarded(go, args)
