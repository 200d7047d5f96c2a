"""FIX gateway end to end: NewOrderSingle -> ExecutionReport through the desk's gateway, router, risk gate
and the real matching engine.

A desk (matching engine with its journal, risk engine, FIX acceptor + gateway; SqliteStore for the FIX
session) runs in a child process; this process is the client: one of our initiator sessions
(SqliteStore too) sending NewOrderSingles with a window of orders in flight. Orders come in crossing
pairs (a buy, then a sell at the same price), so half rest and half trade: every order gets an
ExecutionReport New and then a Fill. Round trip = NewOrderSingle queued -> its ExecutionReport New
handled by the client. Also measured one order at a time (unloaded latency).

Diagnostics: ``--profile DIR`` (cProfile of both processes), ``FIX_BENCH_GC=off`` (the desk runs with the
cyclic garbage collector off: what GC costs) and ``FIX_BENCH_GC=stats`` (time and count of collections
per generation, tracked objects and their commonest types, in the gateway status line). The desk runs
with its default GC tuning (``[desk] gc_freeze`` / ``gc_threshold``); ``--no-gc-freeze`` and
``--gc-threshold A,B,C`` (or ``none``: Python's) change it, to measure what it brings.

Prints the figures and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fixclient import (  # the benches' shared client, beside this file
    CHILD_CONTROL,
    connect,
    load_average,
    measure,
    start_child,
    stop_child,
)

from engines.fix.message import Message

DESK_CHILD = """
import asyncio, gc, json, os, sys, time
from engines.config import DeskConfig
from engines.runtime import Desk

async def main(data_dir, journal, desk_gc):
    cfg = DeskConfig(
        desk={"name": "bench", "data_dir": data_dir, **desk_gc},
        instruments={"BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD"}},
        mm=[], grid=[],
        matching={"journal": journal, "self_trade": "none", "rest": {"enabled": False}, "ws": {"enabled": False}},
        risk={"limits": {"max_orders_per_second": None, "max_order_notional": None},
              "rules": {"order_storm": None}},
        fix={"sessions": [{"name": "bench", "role": "acceptor", "sender_comp_id": "OPDESK",
                           "target_comp_id": "BENCH", "sending_time_window": 600}]},
    )
    desk = Desk(cfg).build(["engines.matching.service:build", "engines.risk.service:build",
                            "engines.fix.service:build"])
    for s in desk.services["fix"].all_sessions():
        s.settings.publish_messages = False  # no console attached: no per-message bus events
    await desk.start()
    gc_mode = os.environ.get("FIX_BENCH_GC", "")
    if gc_mode == "off":  # diagnostic: what the cyclic GC costs the desk
        gc.disable()
    gc_time = [0.0, 0.0, 0.0]
    gc_count = [0, 0, 0]
    if gc_mode == "stats":  # diagnostic: time spent in collections per generation
        t_start = [0.0]
        def on_gc(phase, info):
            if phase == "start":
                t_start[0] = time.perf_counter()
            else:
                gc_time[info["generation"]] += time.perf_counter() - t_start[0]
                gc_count[info["generation"]] += 1
        gc.callbacks.append(on_gc)
    print(desk.services["fix"].acceptor.port, flush=True)
    await control()
    status = desk.services["fix"].gateway.status()
    if gc_mode == "stats":
        status["gc_seconds_by_generation"] = [round(t, 3) for t in gc_time]
        status["gc_collections_by_generation"] = gc_count
        objs = gc.get_objects()
        status["gc_tracked_objects"] = len(objs)
        kinds = {}
        for o in objs:
            k = type(o).__module__ + "." + type(o).__qualname__
            kinds[k] = kinds.get(k, 0) + 1
        status["gc_top_types"] = sorted(kinds.items(), key=lambda kv: -kv[1])[:12]
    await desk.stop()
    print(status, flush=True)
""" + CHILD_CONTROL + """
asyncio.run(main(sys.argv[1], sys.argv[2] == "journal", json.loads(sys.argv[3])))
"""


def order_maker(resting: bool):
    """NewOrderSingles: crossing pairs (a buy, then a sell at the same price: a New and a Fill each)
    or, ``resting``, buys that never trade (a New each)."""

    def order(i: int, cl: bytes) -> Message:
        px = b"%d" % ((50000 + i % 1000) if resting else (60000 + (i // 2) % 1000))
        return Message("D", [(11, cl), (55, b"BTC-USD"), (54, b"1" if resting or i % 2 == 0 else b"2"),
                             (60, b"20260101-00:00:00.000"), (38, b"0.01"), (40, b"2"), (44, px), (59, b"1")])

    return order


async def bench(
    n: int, window: int, runs: int, tmp: Path, journal: bool = True, resting: bool = False,
    profile: str | None = None, desk_gc: dict[str, Any] | None = None,
) -> dict[str, Any]:
    n -= n % 2
    env = {"FIX_BENCH_PROFILE": f"{profile}/fix_gateway_desk.prof"} if profile else None
    child, port = start_child(
        DESK_CHILD, str(tmp / "desk"), "journal" if journal else "no-journal", json.dumps(desk_gc or {}), env=env
    )
    try:
        client = await connect(port, tmp / "client.sqlite", ack_only_new=True)
        per = 1 if resting else 2
        m = await measure(client, child, n, window, runs, order_maker(resting),
                          profile=profile and f"{profile}/fix_gateway_client.prof", reports_per_order=per)
        await client.close()
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        gateway = child.stdout.readline().strip()
        return {
            **m.figures(n, window),
            "desk_cpu_us_per_order": min(m.child_cpu_us),
            "desk_cpu_us_per_order_median": statistics.median(m.child_cpu_us),
            "client_cpu_us_per_order": min(m.local_cpu_us),
            "client_cpu_us_per_order_median": statistics.median(m.local_cpu_us),
            "reports_per_s": per * max(m.rates),
            "flow": "resting" if resting else "crossing",
            "rejects": m.rejects,
            "gateway": gateway,
        }
    finally:
        stop_child(child)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=40_000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3, help="measured runs (best and median reported)")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--no-journal", action="store_true", help="matching engine without its SQLite journal")
    ap.add_argument("--resting", action="store_true", help="orders that never trade: one report each")
    ap.add_argument("--profile", metavar="DIR", help="cProfile the desk and the client into DIR/fix_gateway_*.prof")
    ap.add_argument("--no-gc-freeze", action="store_true", help="desk without [desk] gc_freeze (Python's GC as is)")
    ap.add_argument("--gc-threshold", metavar="A,B,C", help="desk's [desk] gc_threshold ('none': Python's 700,10,10)")
    args = ap.parse_args()
    if args.quick:
        args.orders, args.runs = 3_000, 1
    desk_gc: dict[str, Any] = {}
    if args.no_gc_freeze:
        desk_gc["gc_freeze"] = False
    if args.gc_threshold:
        desk_gc["gc_threshold"] = (
            None if args.gc_threshold == "none" else [int(x) for x in args.gc_threshold.split(",")]
        )
    machine = f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}"
    load0 = load_average()
    print(f"{machine}, load average {load0:.2f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        e = asyncio.run(bench(args.orders, args.window, args.runs, Path(tmp), not args.no_journal, args.resting,
                              args.profile, desk_gc))
    print(
        f"FIX gateway end to end: {e['runs']} x {e['orders']:,} NewOrderSingles ({e['flow']}) -> ExecutionReports,"
        " through router, risk gate and matching engine; SqliteStore on both sessions"
        f" (load average {e['load_avg_1m']:.2f})"
    )
    print(
        f"  window {e['window']}: best {e['orders_per_s']:,.0f} orders/s ({e['reports_per_s']:,.0f} reports/s), "
        f"median {e['orders_per_s_median']:,.0f}; round trip p50 {e['rtt_p50_ms']:.2f} ms, "
        f"p99 {e['rtt_p99_ms']:.2f} ms, rejects {e['rejects']}"
    )
    print(
        f"  one at a time: p50 {e['single_rtt_p50_ms']:.3f} ms, p99 {e['single_rtt_p99_ms']:.3f} ms "
        f"({e['single_orders_per_s']:,.0f} orders/s)"
    )
    print(
        f"  CPU per order (best / median): desk {e['desk_cpu_us_per_order']:.1f} / "
        f"{e['desk_cpu_us_per_order_median']:.1f} us (gateway, risk, matching, journal, FIX session), client "
        f"{e['client_cpu_us_per_order']:.1f} / {e['client_cpu_us_per_order_median']:.1f} us; with a free core each: "
        f"{1e6 / max(e['desk_cpu_us_per_order'], e['client_cpu_us_per_order']):,.0f} orders/s"
    )
    print(f"  gateway: {e['gateway']}")
    figures = {
        "bench": "fix_gateway",
        "machine": machine,
        "load_avg_1m_start": round(load0, 2),
        "desk_gc": desk_gc or "defaults",
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items() if k != "gateway"},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
