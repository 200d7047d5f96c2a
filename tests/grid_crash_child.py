"""Child process for the grid crash test: a desk with simulated prices, the matching engine
(journaled), the risk engine, one grid bot and fast taker flow. Prints one JSON line per fill of the
bot once the bot's store has committed it, and runs until it is killed.

    python -m tests.grid_crash_child DATA_DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from engines.config import DeskConfig
from engines.orders import Fill
from engines.runtime import Desk

BOT = "g"
SYM = "ETH-USD"
CHILD_BUILDERS = [
    "engines.sim.prices:build",
    "engines.matching.service:build",
    "engines.risk.service:build",
    "engines.grid.service:build",
    "engines.sim.takers:build",
]
RESTART_BUILDERS = ["engines.matching.service:build", "engines.risk.service:build", "engines.grid.service:build"]


def config() -> DeskConfig:
    return DeskConfig(
        instruments={SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060, "volatility": 0.05}},
        sim={"enabled": True, "seed": 7, "tick_hz": 40.0,
             "takers": {"rate": 40.0, "mean_notional": 600.0, "symbols": [SYM]}},
        matching={"journal": True},
        risk={"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}},
        mm=[],
        grid=[{"name": BOT, "symbol": SYM, "lower": "3040", "upper": "3080", "levels": 41, "order_qty": "0.1",
               "trend_action": "none", "status_interval": 0.2}],
        fix={"enabled": False},
    )


async def main(data_dir: Path) -> None:
    desk = Desk(config(), data_dir=data_dir).build(CHILD_BUILDERS)
    bot = desk.services["bots"][BOT]
    tasks: set[asyncio.Task[None]] = set()

    async def report_durable(ev: Fill) -> None:
        await bot.store.flush()
        print(json.dumps({"fill": [ev.order_id, ev.trade_id], "side": ev.side.value, "qty": ev.qty}), flush=True)

    def on_fill(ev: Fill) -> None:
        if ev.owner == BOT:
            task = asyncio.get_running_loop().create_task(report_durable(ev))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    desk.bus.subscribe(Fill, on_fill)
    await desk.start()
    print(json.dumps({"started": True}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
