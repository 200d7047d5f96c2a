"""Child process for the market-maker crash test: a desk with simulated prices, the matching engine
(journaled), the risk engine, one busy market maker and fast taker flow. Prints one JSON line per
fill of the bot once the bot's store has committed it (so once the venue's journal has it too: the
store waits for the venue) and one per accepted order, and runs until it is killed.

    python -m tests.mm_crash_child DATA_DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from engines.config import DeskConfig
from engines.orders import Fill, OrderAccepted
from engines.runtime import Desk

BOT = "mm1"
CHILD_BUILDERS = [
    "engines.sim.prices:build",
    "engines.matching.service:build",
    "engines.risk.service:build",
    "engines.mm.service:build",
    "engines.sim.takers:build",
]
RESTART_BUILDERS = ["engines.matching.service:build", "engines.risk.service:build", "engines.mm.service:build"]


def config() -> DeskConfig:
    return DeskConfig(
        sim={"enabled": True, "seed": 11, "tick_hz": 40.0,
             "takers": {"rate": 40.0, "mean_notional": 2500.0, "symbols": ["BTC-USD"], "drift_bias": 0.2}},
        matching={"journal": True},
        risk={"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}},
        mm=[{"name": BOT, "symbol": "BTC-USD", "spread_bps": "3", "levels": 2, "level_step_bps": "2",
             "order_qty": "0.02", "tolerance_bps": "0.5", "max_orders_per_second": 200, "burst": 50}],
        grid=[],
        fix={"enabled": False},
    )


async def main(data_dir: Path) -> None:
    desk = Desk(config(), data_dir=data_dir).build(CHILD_BUILDERS)

    bot = desk.services["bots"][BOT]
    tasks: set[asyncio.Task[None]] = set()

    async def report_durable(ev: Fill) -> None:
        await bot.store.flush()
        print(json.dumps({"fill": ev.trade_id, "client_id": ev.client_id, "qty": ev.qty}), flush=True)

    def on_fill(ev: Fill) -> None:
        if ev.owner == BOT:
            task = asyncio.get_running_loop().create_task(report_durable(ev))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def on_accepted(ev: OrderAccepted) -> None:
        if ev.owner == BOT:
            print(json.dumps({"accepted": ev.client_id}), flush=True)

    desk.bus.subscribe(Fill, on_fill)
    desk.bus.subscribe(OrderAccepted, on_accepted)
    await desk.start()
    print(json.dumps({"started": True}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
