"""``opdesk kill [--scope …] --reason TEXT [--flatten]``: kill a running desk (or one bot/instrument)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from opdesk.control_client import add_connection_args

    p = sub.add_parser("kill", help="halt trading on a running desk and cancel every open order in scope")
    p.add_argument("--scope", default="desk", help="desk (default), bot:NAME or instrument:SYMBOL")
    p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    p.add_argument(
        "--flatten", action="store_true", help="also close positions in scope with reduce-only orders"
    )
    add_connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from opdesk.control_client import actor, call, run_guarded

    def go(a: argparse.Namespace) -> int:
        body = {"scope": a.scope, "reason": a.reason, "flatten": a.flatten, "source": "cli", "actor": actor()}
        r = call(a, "POST", "/kill", body)
        print(f"KILL {r['scope']}: HALTED in {r['halted_ms']:.3f} ms")
        print(f"  cancels: {r['confirmed']}/{r['requested']} confirmed in {r['elapsed_ms']:.3f} ms")
        for p in r["pending"]:
            print(f"  PENDING {p} (not confirmed; retried when its venue reconnects)")
        for line in r["flatten"]:
            print(f"  flatten: {line}")
        return 0

    return run_guarded(go, args)
