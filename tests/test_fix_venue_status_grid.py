"""A grid bot on a FIX venue recovers its resting orders after a restart: the desk's builders start it
after FIX (session up, so the venue can ask its counterparty), and the FIX venue attributes the
counterparty's reports to the grid from its durable ClOrdID map."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engines.config import DeskConfig
from engines.events import PriceTick
from engines.fix.session import SessionState
from engines.orders import OrderAccepted, OrderRequest, Side, TimeInForce
from engines.runtime import BUILDERS, Desk

SYM = "ETH-USD"
GRID_BUILDERS = [b for b in BUILDERS if b.split(":")[0] in (
    "engines.matching.service", "engines.risk.service", "engines.fix.service", "engines.grid.service")]  # fmt: skip


def config(tmp_path: Path, on_start: str, **session: object) -> DeskConfig:
    return DeskConfig.model_validate({
        "desk": {"name": "t", "data_dir": str(tmp_path)},
        "instruments": {SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060}},
        "sim": {"enabled": False},
        "matching": {"journal": True},
        "risk": {"rules": {"stale_market_data": None, "fix_session_loss": False}},
        "mm": [],
        "grid": [{"name": "g", "symbol": SYM, "venue": "loop", "lower": "3000", "upper": "3100", "levels": 5,
                  "order_qty": "0.5", "on_start": on_start, "on_stop": "keep"}],
        "fix": {"sessions": [{"name": "loop", "sender_comp_id": "GRIDLOOP", "target_comp_id": "OPDESK", **session}]},
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


async def test_grid_learns_what_happened_while_its_fix_venue_was_away(tmp_path: Path) -> None:
    # A counterparty that drops reports for an absent client (no store-and-forward): on reconnect the
    # FIX venue asks it for its orders' status, learns the fill, publishes it, and the grid's cell flips.
    d = Desk(config(tmp_path, "cancel", store_offline=False)).build(GRID_BUILDERS)
    accepted, flipped = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    def on_accepted(ev: OrderAccepted) -> None:
        if ev.venue == "loop" and ev.owner == "g":
            seen.append(ev.client_id)
            if len(seen) == 4:
                accepted.set()
            elif len(seen) == 5:
                flipped.set()

    d.bus.subscribe(OrderAccepted, on_accepted)
    await d.start()
    try:
        bot, fix, venue = d.services["bots"]["g"], d.services["fix"], d.router.venues["loop"]
        d.bus.publish(PriceTick(symbol=SYM, price=3060.0))
        await asyncio.wait_for(accepted.wait(), 5)
        assert [(side, px) for _, side, px in resting(d)] == [
            ("buy", 60000), ("buy", 60500), ("buy", 61000), ("sell", 62000)]
        await fix.logout("loop")
        d.services["matching"].submit(OrderRequest(symbol=SYM, side=Side.SELL, qty=50, price=61000,
                                                   tif=TimeInForce.IOC, owner="taker", client_id="t1"))
        await fix.reconnect("loop")
        await venue.session.wait_state(SessionState.ACTIVE)
        # No price update needed: the grid reconciles with its venue when the session is back.
        await asyncio.wait_for(flipped.wait(), 5)  # the flipped cell's sell, accepted over FIX
        assert len(seen) == 5 and bot.status()["inventory"] == 0.5
        assert sorted((side, px) for _, side, px in resting(d)) == [
            ("buy", 60000), ("buy", 60500), ("sell", 61500), ("sell", 62000)]
    finally:
        await d.stop()
