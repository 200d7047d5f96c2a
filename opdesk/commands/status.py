"""``opdesk status``: trading states, pending cancels, positions and bots of a running desk."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    from opdesk.control_client import add_connection_args

    p = sub.add_parser("status", help="show a running desk's trading state, pending cancels and positions")
    p.add_argument("--json", action="store_true", help="print the raw JSON")
    add_connection_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from opdesk.control_client import call, run_guarded

    def go(a: argparse.Namespace) -> int:
        r = call(a, "GET", "/status")
        if a.json:
            print(json.dumps(r, indent=2, sort_keys=True))
            return 0
        print(f"desk {r['desk']} (pid {r['pid']}): {r['desk_state'].upper()}")
        for scope, state in sorted(r["states"].items()):
            print(f"  {scope}: {state.upper()}")
        books = _matching_engines(r.get("engines") or {})
        for venue, up in sorted(r["venues"].items()):
            engine = books.pop(venue, "")
            print(f"  venue {venue}: {'connected' if up else 'DISCONNECTED'}{' · ' + engine if engine else ''}")
        for venue, engine in sorted(books.items()):  # a matching engine without a routed venue
            print(f"  venue {venue} (not routed): {engine}")
        for p in r["pending_cancels"]:
            print(f"  PENDING cancel {p['order']} ({p['reason']}, {p['attempts']} retries)")
        for pos in r["positions"]:
            print(
                f"  position {pos['owner']} {pos['symbol']}: {pos['qty_lots']:+d} lots, "
                f"realised {pos['realised']:.2f}, unrealised {pos['unrealised']:.2f}, fees {pos['fees']:.2f}"
            )
        for name, st in sorted(r["bots"].items()):
            state = st.get("state", "?") if isinstance(st, dict) else st
            print(f"  bot {name}: {state}")
        return 0

    return run_guarded(go, args)


#: ``book_impl`` in the matching engine's status → what the operator reads
BOOK_IMPL = {"compiled": "compiled order book", "python": "pure-Python order book"}


def _matching_engines(engines: dict[str, Any]) -> dict[str, str]:
    """venue → "matching engine <state>, <which order book>" for every engine that reports a book."""
    out: dict[str, str] = {}
    for name, st in engines.items():
        if isinstance(st, dict) and "book_impl" in st:
            impl = BOOK_IMPL.get(str(st["book_impl"]), f"{st['book_impl']} order book")
            out[str(st.get("venue", name))] = f"{name} engine {st.get('state', '?')}, {impl}"
    return out
