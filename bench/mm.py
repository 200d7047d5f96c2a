"""Market-maker figures: quote computation, and a full requote (6 cancels + 6 new orders) through
OMS → rate limiter → router/gate → the real matching engine, with and without the SQLite store.

    python bench/mm.py
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import PriceTick
from engines.instruments import Instrument
from engines.mm.quote import QuoteParams, compute_quotes
from engines.runtime import Desk

BTC = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")


def bench_quotes(n: int = 20_000) -> float:
    p = QuoteParams(spread_bps=Decimal(8), levels=3, level_step_bps=Decimal(5), qty_lots=50, qty_increment_lots=10,
                    skew_bps_per_lot=Decimal("0.01"))
    t0 = time.perf_counter()
    for i in range(n):
        compute_quotes(65000.0 + (i % 100) * 0.37, i % 200 - 100, p, BTC)
    return (time.perf_counter() - t0) / n * 1e6


async def bench_requotes(store: bool, n: int = 300) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = DeskConfig(sim={"enabled": False}, grid=[], fix={"enabled": False},
                         risk={"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}},
                         matching={"journal": False},
                         mm=[{"name": "b", "symbol": "BTC-USD", "levels": 3, "spread_bps": "8", "order_qty": "0.05",
                              "max_orders_per_second": 1e9, "burst": 1_000_000}])
        desk = Desk(cfg, clock=ManualClock(), data_dir=Path(tmp)).build(
            ["engines.matching.service:build", "engines.risk.service:build", "engines.mm.service:build"])
        bot = desk.services["bots"]["b"]
        bot.autorun = False
        if not store:
            bot.store = None
            bot.oms.store = None
        await desk.start()
        t0 = time.perf_counter()
        for i in range(n):
            desk.bus.publish(PriceTick(symbol="BTC-USD", price=65000.0 if i % 2 else 65100.0, source="sim"))
            await bot.step()
            await bot.pump()
        dt = (time.perf_counter() - t0) / n
        await desk.stop()
        return dt * 1e6


def main() -> None:
    q = bench_quotes()
    r_mem = asyncio.run(bench_requotes(False))
    r_db = asyncio.run(bench_requotes(True))
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    print(f"machine: {machine}")
    print(f"compute_quotes (3 levels a side):                {q:8.1f} µs")
    print(f"full requote, 12 actions, no store:              {r_mem:8.1f} µs")
    print(f"full requote, 12 actions, intents committed WAL: {r_db:8.1f} µs")
    print(json.dumps({"quote_us": round(q, 1), "requote_us_no_store": round(r_mem, 1),
                      "requote_us_store": round(r_db, 1), "machine": machine}))


if __name__ == "__main__":
    main()
