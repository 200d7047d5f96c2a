"""Kill-switch speed: 10,000 resting orders from several owners on the real matching engine.

Each run builds a desk with the matching engine and the risk engine (files in a temp dir), rests
``--orders`` non-crossing limit orders from ``--owners`` owners on two instruments through the
router and the pre-trade gate, then calls ``KillSwitch.kill("desk")`` and measures

* kill call -> desk HALTED (the synchronous part),
* kill call -> last cancel confirmed (the kill report, and independently the last ``OrderCanceled``
  seen on the bus),

and checks that the book is empty afterwards. Also: the cost of one ``RiskGate.check``.
Goal: every cancel confirmed within 50 ms. Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from engines.clock import SystemClock
from engines.config import DeskConfig
from engines.orders import OrderCanceled, OrderRequest, Side
from engines.risk.events import TradingState, TradingStateChanged
from engines.runtime import Desk

BUILDERS = ["engines.matching.service:build", "engines.risk.service:build"]
SYMBOLS = {"BTC-USD": 130_000, "ETH-USD": 64_000}


def make_desk(data_dir: Path, journal: bool = False) -> Desk:
    cfg = DeskConfig(
        sim={"enabled": False},
        mm=[],
        grid=[],
        fix={"enabled": False},
        # no limits: the bench rests 10,000 orders as fast as it can
        risk={"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}},
        matching={"journal": journal},
    )
    return Desk(cfg, clock=SystemClock(), data_dir=data_dir).build(BUILDERS)


async def one_run(n_orders: int, n_owners: int, data_dir: Path, journal: bool) -> dict[str, float]:
    desk = make_desk(data_dir, journal)
    await desk.start()
    try:
        venue_name = desk.config.matching.venue
        for k in range(n_orders):
            symbol = "BTC-USD" if k % 2 else "ETH-USD"
            mid = SYMBOLS[symbol]
            side = Side.BUY if (k // 2) % 2 else Side.SELL
            offset = 1 + (k // 4) % 2000
            price = mid - offset if side is Side.BUY else mid + offset
            ok = await desk.router.submit(
                OrderRequest(
                    symbol=symbol,
                    side=side,
                    qty=1 + k % 5,
                    price=price,
                    owner=f"bot-{k % n_owners}",
                    client_id=f"c{k}",
                    venue=venue_name,
                )
            )
            assert ok
        venue = desk.router.venues[venue_name]
        resting = len(await venue.open_orders())
        assert resting == n_orders, f"{resting} resting, expected {n_orders}"

        marks: dict[str, float] = {}
        last_cancel = [0.0]
        desk.bus.subscribe(
            TradingStateChanged,
            lambda ev: (
                marks.setdefault("halted", time.perf_counter()) if ev.state is TradingState.HALTED else None
            ),
        )
        desk.bus.subscribe(OrderCanceled, lambda ev: last_cancel.__setitem__(0, time.perf_counter()))
        ks = desk.services["killswitch"]
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        report = await ks.kill("desk", reason="bench", source="cli", actor="bench")
        t_end = time.perf_counter()
        cpu = time.process_time() - c0
        left = len(await venue.open_orders())
        assert left == 0, f"{left} orders left after the kill"
        assert report.confirmed == n_orders and not report.pending, report
        return {
            "halted_ms": (marks["halted"] - t0) * 1000,
            "last_cancel_bus_ms": (last_cancel[0] - t0) * 1000,
            "all_confirmed_ms": report.elapsed_ms,
            "kill_call_ms": (t_end - t0) * 1000,  # includes flushing the audit row to SQLite
            "kill_cpu_ms": cpu * 1000,  # CPU time of this process over the kill call
        }
    finally:
        await desk.stop()


async def engine_only(n_orders: int, n_owners: int, runs: int) -> float:
    """Best CPU ms of the matching engine's own ``cancel_all`` of the same book, no risk engine: the floor."""
    best = float("inf")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = DeskConfig(
                sim={"enabled": False}, mm=[], grid=[], fix={"enabled": False}, matching={"journal": False}
            )
            desk = Desk(cfg, data_dir=Path(tmp)).build(BUILDERS[:1])
            await desk.start()
            engine = desk.services["matching"]
            for k in range(n_orders):
                symbol = "BTC-USD" if k % 2 else "ETH-USD"
                side = Side.BUY if (k // 2) % 2 else Side.SELL
                offset = 1 + (k // 4) % 2000
                price = SYMBOLS[symbol] - offset if side is Side.BUY else SYMBOLS[symbol] + offset
                engine.submit(
                    OrderRequest(
                        symbol=symbol,
                        side=side,
                        qty=1 + k % 5,
                        price=price,
                        owner=f"bot-{k % n_owners}",
                        client_id=f"c{k}",
                        venue="sim",
                    )
                )
            gc.collect()
            gc.disable()
            c0 = time.process_time()
            engine.cancel_all()
            best = min(best, (time.process_time() - c0) * 1000)
            gc.enable()
            await desk.stop()
    return best


def gate_cost(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        # the default limits without the rate throttle (measure the checks, not the throttle refusing)
        limits = {"max_order_notional": "1000000", "daily_loss": "50000", "max_position": "100"}
        cfg = DeskConfig(
            sim={"enabled": False},
            mm=[],
            grid=[],
            fix={"enabled": False},
            risk={"limits": limits, "rules": {"order_storm": 10**9}},
        )
        desk = Desk(cfg, data_dir=Path(tmp)).build(["engines.risk.service:build"])
        gate = desk.router.gate
        gate.limits("mm-btc", "BTC-USD")
        orders = [
            OrderRequest(
                symbol="BTC-USD",
                side=Side.BUY,
                qty=1,
                price=130_000 - (i % 50),
                owner="mm-btc",
                client_id=f"g{i}",
            )
            for i in range(n)
        ]
        check = gate.check
        t0 = time.perf_counter()
        for o in orders:
            check(o)
        return (time.perf_counter() - t0) / n * 1e6


async def series(args: argparse.Namespace, journal: bool) -> dict[str, float]:
    label = "journal on, durable acks (desk default)" if journal else "in-memory engine (journal off)"
    print(f"-- {label}")
    runs = []
    for r in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            res = await one_run(args.orders, args.owners, Path(tmp), journal)
        runs.append(res)
        print(
            f"run {r + 1}: HALTED {res['halted_ms']:.3f} ms; out of the book (last OrderCanceled) "
            f"{res['last_cancel_bus_ms']:.1f} ms; all {args.orders} cancels confirmed {res['all_confirmed_ms']:.1f} ms; "
            f"kill() returned {res['kill_call_ms']:.1f} ms (CPU {res['kill_cpu_ms']:.1f} ms)"
        )
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    worst = {k: max(r[k] for r in runs) for k in runs[0]}
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    print(
        f"median of {args.runs}: HALTED {med['halted_ms']:.3f} ms, out of the book {med['last_cancel_bus_ms']:.1f} ms, "
        f"all confirmed {med['all_confirmed_ms']:.1f} ms (worst {worst['all_confirmed_ms']:.1f} ms; goal <= 50 ms)"
    )
    return {
        "halted_ms_median": round(med["halted_ms"], 4),
        "out_of_book_ms_median": round(med["last_cancel_bus_ms"], 2),
        "all_confirmed_ms_median": round(med["all_confirmed_ms"], 2),
        "all_confirmed_ms_worst": round(worst["all_confirmed_ms"], 2),
        "all_confirmed_ms_best": round(best["all_confirmed_ms"], 2),
        "kill_call_ms_median": round(med["kill_call_ms"], 2),
        "kill_cpu_ms_median": round(med["kill_cpu_ms"], 2),
        "kill_cpu_ms_best": round(best["kill_cpu_ms"], 2),
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    logging.disable(logging.WARNING)  # the kill logs a warning per run; the figures are the output here
    memory = await series(args, journal=False)
    durable = await series(args, journal=True)
    floor = await engine_only(args.orders, args.owners, args.runs)
    print(
        f"floor: the matching engine's own cancel_all of {args.orders} orders, no risk engine: {floor:.1f} ms CPU (best)"
    )
    gate_us = gate_cost(200_000)
    print(f"pre-trade gate: {gate_us:.2f} us per check")
    return {
        "bench": "killswitch",
        "orders": args.orders,
        "owners": args.owners,
        "runs": args.runs,
        "in_memory": memory,
        "journal_durable": durable,
        "engine_cancel_all_cpu_ms_best": round(floor, 2),
        "gate_check_us": round(gate_us, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--owners", type=int, default=5)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    figures = asyncio.run(main_async(args))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
