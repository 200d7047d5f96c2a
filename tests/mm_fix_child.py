"""Child process for the FIX-venue reconcile test: a desk whose market maker quotes over the desk's own
loopback FIX session (FIX venue "loop" → the desk's acceptor → the journaled matching engine). Prints one
JSON line per order of the bot accepted over FIX, once the bot's store has committed it, and runs until
it is killed.

    python -m tests.mm_fix_child DATA_DIR RECONCILE
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from engines.config import DeskConfig
from engines.orders import OrderAccepted
from engines.runtime import Desk

BOT = "mmf"
VENUE = "loop"
CLIENT = "MMLOOP"  # the loopback initiator's CompID: the gateway's owner is fix:MMLOOP
CHILD_BUILDERS = [
    "engines.sim.prices:build",
    "engines.matching.service:build",
    "engines.risk.service:build",
    "engines.fix.service:build",
    "engines.mm.service:build",
]
# No price feed after the restart: the bot reconciles and then has nothing to quote on (deterministic).
RESTART_BUILDERS = CHILD_BUILDERS[1:]


def config(reconcile: str = "cancel") -> DeskConfig:
    return DeskConfig(
        sim={"enabled": True, "seed": 5, "tick_hz": 20.0},
        matching={"journal": True},
        risk={"limits": {}, "rules": {"order_storm": None, "stale_market_data": None, "fix_session_loss": False}},
        # A wide tolerance and a long max age: the first four quotes rest, nothing is requoted.
        mm=[{"name": BOT, "symbol": "BTC-USD", "venue": VENUE, "spread_bps": "10", "levels": 2,
             "order_qty": "0.02", "tolerance_bps": "300", "max_order_age": 3600.0, "max_orders_per_second": 50,
             "burst": 10, "reconcile": reconcile}],
        grid=[],
        fix={"sessions": [{"name": VENUE, "sender_comp_id": CLIENT, "target_comp_id": "OPDESK"}]},
    )  # fmt: skip


async def main(data_dir: Path, reconcile: str) -> None:
    desk = Desk(config(reconcile), data_dir=data_dir).build(CHILD_BUILDERS)
    bot = desk.services["bots"][BOT]
    tasks: set[asyncio.Task[None]] = set()

    async def report(ev: OrderAccepted) -> None:
        await bot.store.flush()
        print(json.dumps({"accepted": ev.client_id}), flush=True)

    def on_accepted(ev: OrderAccepted) -> None:
        if ev.owner == BOT and ev.venue == VENUE:
            task = asyncio.get_running_loop().create_task(report(ev))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    desk.bus.subscribe(OrderAccepted, on_accepted)
    await desk.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
