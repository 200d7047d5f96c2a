"""A grid bot on a FIX venue recovers its resting orders after a restart: the desk's builders start it
after FIX (session up, so the venue can ask its counterparty), and the FIX venue attributes the
counterparty's reports to the grid from its durable ClOrdID map."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engines.config import DeskConfig
from engines.events import PriceTick
from engines.orders import OrderAccepted
from engines.runtime import BUILDERS, Desk

SYM = "ETH-USD"
GRID_BUILDERS = [b for b in BUILDERS if b.split(":")[0] in (
    "engines.matching.service", "engines.risk.service", "engines.fix.service", "engines.grid.service")]  # fmt: skip


def config(tmp_path: Path, on_start: str) -> DeskConfig:
    return DeskConfig.model_validate({
        "desk": {"name": "t", "data_dir": str(tmp_path)},
        "instruments": {SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060}},
        "sim": {"enabled": False},
        "matching": {"journal": True},
        "risk": {"rules": {"stale_market_data": None, "fix_session_loss": False}},
        "mm": [],
        "grid": [{"name": "g", "symbol": SYM, "venue": "loop", "lower": "3000", "upper": "3100", "levels": 5,
                  "order_qty": "0.5", "on_start": on_start, "on_stop": "keep"}],
        "fix": {"sessions": [{"name": "loop", "sender_comp_id": "GRIDLOOP", "target_comp_id": "OPDESK"}]},
    })  # fmt: skip


def resting(desk: Desk) -> list[tuple[str, str, int]]:
    return sorted((o.client_id, o.side.value, o.price) for o in desk.services["matching"].open_orders(owner="fix:GRIDLOOP"))


async def test_builders_start_grid_bots_after_fix() -> None:
    assert GRID_BUILDERS.index("engines.fix.service:build") < GRID_BUILDERS.index("engines.grid.service:build")


async def test_grid_on_fix_venue_recovers_its_orders_after_a_restart(tmp_path: Path) -> None:
    d1 = Desk(config(tmp_path, "cancel")).build(GRID_BUILDERS)
    accepted = asyncio.Event()
    seen: list[str] = []

    def on_accepted(ev: OrderAccepted) -> None:
        if ev.venue == "loop" and ev.owner == "g":
            seen.append(ev.client_id)
            if len(seen) == 4:
                accepted.set()

    d1.bus.subscribe(OrderAccepted, on_accepted)
    await d1.start()
    d1.bus.publish(PriceTick(symbol=SYM, price=3060.0))
    await asyncio.wait_for(accepted.wait(), 5)
    before = resting(d1)
    assert len(before) == 4
    await d1.stop()  # on_stop = "keep": the grid's orders stay at the venue

    d2 = Desk(config(tmp_path, "recover")).build(GRID_BUILDERS)
    await d2.start()
    try:
        bot = d2.services["bots"]["g"]
        assert [o.client_id for o in bot._recover] == [cid for cid, _, _ in before]  # asked over FIX (AF)
        d2.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await bot.idle()
        assert sorted(bot.orders) == [cid for cid, _, _ in before]  # every order adopted on its level
        assert resting(d2) == before  # nothing placed twice, nothing left unknown
    finally:
        await d2.stop()
