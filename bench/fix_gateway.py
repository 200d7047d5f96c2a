"""FIX gateway end to end: NewOrderSingle -> ExecutionReport through the desk's gateway, router, risk gate
and the real matching engine.

A desk (matching engine with its journal, risk engine, FIX acceptor + gateway; SqliteStore for the FIX
session) runs in a child process; this process is the client: one of our initiator sessions
(SqliteStore too) sending NewOrderSingles with a window of orders in flight. Orders come in crossing
pairs (a buy, then a sell at the same price), so half rest and half trade: every order gets an
ExecutionReport New and then a Fill. Round trip = NewOrderSingle queued -> its ExecutionReport New
handled by the client. Also measured one order at a time (unloaded latency).

Prints the figures and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engines.fix.application import Application
from engines.fix.events import SessionState
from engines.fix.initiator import Initiator
from engines.fix.message import FixMessage, Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import SqliteStore

DESK_CHILD = """
import asyncio, os, sys, time
from pathlib import Path
from engines.config import DeskConfig
from engines.runtime import Desk

async def main(data_dir, journal):
    cfg = DeskConfig(
        desk={"name": "bench", "data_dir": data_dir},
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
    print(desk.services["fix"].acceptor.port, flush=True)
    loop = asyncio.get_running_loop()
    prof = None
    prof_on = False
    if os.environ.get("FIX_BENCH_PROFILE"):  # profile the desk from the first "cpu" command on
        import cProfile
        prof = cProfile.Profile()
    while True:  # "cpu" -> this process's CPU seconds so far; end of input -> stop
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(time.process_time(), flush=True)
        if prof is not None and not prof_on:
            prof.enable()
            prof_on = True
    status = desk.services["fix"].gateway.status()
    if prof is not None:
        prof.disable()
        import pstats
        pstats.Stats(prof).sort_stats("tottime").dump_stats(os.environ["FIX_BENCH_PROFILE"])
    await desk.stop()
    print(status, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2] == "journal"))
"""


class Client(Application):
    def __init__(self) -> None:
        self.sent_at: dict[bytes, float] = {}
        self.rtts: list[float] = []
        self.news = 0
        self.reports = 0
        self.rejects = 0
        self.event = asyncio.Event()
        self.space = asyncio.Event()  # set when an acknowledgement frees a place in the window
        self.target = 0

    def from_app(self, msg: FixMessage, session: Session) -> None:
        self.reports += 1
        et = msg.get(150)
        if et == b"0" or et == b"8":
            t = self.sent_at.pop(msg.get(11) or b"", None)
            if t is not None:
                self.rtts.append(time.perf_counter() - t)
            self.news += 1
            if et == b"8":
                self.rejects += 1
            self.space.set()
        if self.reports >= self.target:
            self.event.set()


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def run_orders(
    session: Session, app: Client, n: int, window: int, start: int, resting: bool = False
) -> float:
    """Send ``n`` orders keeping at most ``window`` unacknowledged; wait for every report.

    Crossing pairs (a New and a Fill per order), or with ``resting`` buys that never trade (a New each).
    """
    n -= n % 2
    app.news = 0
    app.reports = 0
    app.target = n if resting else 2 * n
    app.event.clear()
    app.rtts.clear()
    t0 = time.perf_counter()
    sent = 0
    while sent < n:
        while sent < n and sent - app.news < window:
            cl = b"B%d" % (start + sent)
            app.sent_at[cl] = time.perf_counter()
            px = b"%d" % ((50000 + sent % 1000) if resting else (60000 + (sent // 2) % 1000))
            session.send_nowait(
                Message(
                    "D",
                    [
                        (11, cl),
                        (55, b"BTC-USD"),
                        (54, b"1" if resting or sent % 2 == 0 else b"2"),
                        (60, b"20260101-00:00:00.000"),
                        (38, b"0.01"),
                        (40, b"2"),
                        (44, px),
                        (59, b"1"),
                    ],
                )
            )
            sent += 1
        if sent - app.news >= window:
            app.space.clear()
            await app.space.wait()
    await asyncio.wait_for(app.event.wait(), 300)
    return time.perf_counter() - t0


async def bench(
    n: int, window: int, tmp: Path, journal: bool = True, resting: bool = False
) -> dict[str, Any]:
    child = subprocess.Popen(
        [sys.executable, "-c", DESK_CHILD, str(tmp / "desk"), "journal" if journal else "no-journal"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        port = int(child.stdout.readline())
        app = Client()
        store = SqliteStore(tmp / "client.sqlite")
        session = Session(
            SessionID("FIX.4.4", "BENCH", "OPDESK"),
            SessionSettings(heartbeat_interval=30, publish_messages=False, sending_time_window=600),
            app,
            store,
        )
        ini = Initiator(session, "127.0.0.1", port, seed=1)
        await ini.start()
        await session.wait_state(SessionState.ACTIVE, 10)
        await run_orders(session, app, min(2000, n), window, 0, resting)  # warm-up

        def desk_cpu() -> float:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("cpu\n")
            child.stdin.flush()
            return float(child.stdout.readline())

        cpu0, client0 = desk_cpu(), time.process_time()
        elapsed = await run_orders(session, app, n, window, 10_000_000, resting)
        cpu1, client1 = desk_cpu(), time.process_time()
        loaded = list(app.rtts)
        rejects = app.rejects
        single_n = min(2000, n)
        t_single = await run_orders(session, app, single_n, 1, 20_000_000, resting)
        single = list(app.rtts)
        await ini.stop("bench done")
        await store.close()
        child.stdin.close()
        gateway = child.stdout.readline().strip()
        return {
            "orders": n - n % 2,
            "window": window,
            "orders_per_s": (n - n % 2) / elapsed,
            "desk_cpu_us_per_order": (cpu1 - cpu0) / (n - n % 2) * 1e6,
            "client_cpu_us_per_order": (client1 - client0) / (n - n % 2) * 1e6,
            "reports_per_s": (1 if resting else 2) * (n - n % 2) / elapsed,
            "flow": "resting" if resting else "crossing",
            "rtt_p50_ms": percentile(loaded, 50) * 1e3,
            "rtt_p99_ms": percentile(loaded, 99) * 1e3,
            "single_rtt_p50_ms": percentile(single, 50) * 1e3,
            "single_rtt_p99_ms": percentile(single, 99) * 1e3,
            "single_orders_per_s": single_n / t_single,
            "rejects": rejects,
            "gateway": gateway,
        }
    finally:
        if child.poll() is None:
            if child.stdin is not None and not child.stdin.closed:
                child.stdin.close()
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=40_000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--no-journal", action="store_true", help="matching engine without its SQLite journal")
    ap.add_argument("--resting", action="store_true", help="orders that never trade: one report each")
    args = ap.parse_args()
    if args.quick:
        args.orders = 3_000
    with tempfile.TemporaryDirectory() as tmp:
        e = asyncio.run(bench(args.orders, args.window, Path(tmp), not args.no_journal, args.resting))
    print(
        f"FIX gateway end to end: {e['orders']:,} NewOrderSingles ({e['flow']}) -> ExecutionReports,"
        " through router, risk gate and matching engine; SqliteStore on both sessions"
    )
    print(
        f"  window {e['window']}: {e['orders_per_s']:,.0f} orders/s ({e['reports_per_s']:,.0f} reports/s), "
        f"round trip p50 {e['rtt_p50_ms']:.2f} ms, p99 {e['rtt_p99_ms']:.2f} ms, rejects {e['rejects']}"
    )
    print(
        f"  one at a time: p50 {e['single_rtt_p50_ms']:.3f} ms, p99 {e['single_rtt_p99_ms']:.3f} ms "
        f"({e['single_orders_per_s']:,.0f} orders/s)"
    )
    print(
        f"  CPU per order: desk {e['desk_cpu_us_per_order']:.1f} us (gateway, risk, matching, journal, FIX session),"
        f" client {e['client_cpu_us_per_order']:.1f} us; with a free core each: "
        f"{1e6 / max(e['desk_cpu_us_per_order'], e['client_cpu_us_per_order']):,.0f} orders/s"
    )
    print(f"  gateway: {e['gateway']}")
    figures = {
        "bench": "fix_gateway",
        "machine": f"{os.cpu_count()}-core {platform.machine()}, Python {platform.python_version()}",
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items() if k != "gateway"},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
