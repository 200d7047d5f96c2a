"""The market maker on the real matching engine, with the real risk engine and kill switch."""

from __future__ import annotations

from decimal import Decimal

from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import PriceTick
from engines.mm.events import MMOrderState
from engines.orders import Fill, OrderRequest, Side, TimeInForce
from engines.risk.events import RiskBreach, TradingState
from engines.runtime import Desk

NO_RULES = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}}
BUILDERS = ["engines.matching.service:build", "engines.risk.service:build", "engines.mm.service:build"]


def make_desk(tmp_path, **mm) -> Desk:
    bot = {"name": "mm1", "symbol": "BTC-USD", "spread_bps": "8", "levels": 2, "level_step_bps": "5",
           "order_qty": "0.05"}
    bot.update(mm)
    cfg = DeskConfig(sim={"enabled": False}, mm=[bot], grid=[], fix={"enabled": False}, risk=NO_RULES,
                     matching={"journal": False})
    desk = Desk(cfg, clock=ManualClock(), data_dir=tmp_path).build(BUILDERS)
    desk.services["bots"]["mm1"].autorun = False  # the test drives step()/pump()
    return desk


def tick(desk: Desk, price: float) -> None:
    desk.bus.publish(PriceTick(symbol="BTC-USD", price=price, source="sim"))


async def test_quotes_fills_and_pnl_on_the_matching_engine(tmp_path):
    desk = make_desk(tmp_path)
    states: list[MMOrderState] = []
    fills: list[Fill] = []
    desk.bus.subscribe(MMOrderState, states.append)
    desk.bus.subscribe(Fill, lambda f: fills.append(f) if f.owner == "mm1" else None)
    await desk.start()
    bot = desk.services["bots"]["mm1"]
    engine = desk.services["matching"]
    try:
        tick(desk, 65000.0)
        await bot.step()
        assert await bot.pump() == 4
        book = sorted((o.client_id, o.side.value, o.price, o.qty) for o in engine.open_orders(owner="mm1"))
        assert book == [("mm1-1", "buy", 129948, 50), ("mm1-2", "buy", 129883, 50),
                        ("mm1-3", "sell", 130052, 50), ("mm1-4", "sell", 130117, 50)]
        bbo = engine.bbo("BTC-USD")
        assert (bbo.bid_px, bbo.ask_px) == (129948, 130052)
        # A taker sells 0.08 through both bids: mm1-1 filled, mm1-2 partially filled.
        await desk.router.submit(OrderRequest(symbol="BTC-USD", side=Side.SELL, qty=80, price=129800,
                                              tif=TimeInForce.IOC, client_id="t1", owner="operator"))
        assert [(f.client_id, f.qty, f.price, f.leaves_qty) for f in fills] == [
            ("mm1-1", 50, 129948, 0), ("mm1-2", 30, 129883, 20)]
        hist = [(s.previous, s.state) for s in states if s.client_id == "mm1-1"]
        assert hist == [("idle", "idle"), ("idle", "pending_new"), ("pending_new", "working"),
                        ("working", "filled")]
        assert [s.state for s in states if s.client_id == "mm1-2"][-1] == "partially_filled"
        pnl = bot.pnl
        assert pnl.position == Decimal("0.080")
        assert pnl.avg_price == Decimal("64961.8125")  # (0.05 x 64974 + 0.03 x 64941.5) / 0.08
        assert pnl.fees == sum(Decimal(repr(f.fee)) for f in fills)
        assert abs(pnl.fees - Decimal("0.5196945")) < Decimal("1e-9")  # maker fee 1 bps of 5196.945
        tick(desk, 65000.0)
        await bot.step()
        desk.clock.advance(1.0)
        await bot.pump()
        live = {o.client_id for o in engine.open_orders(owner="mm1")}
        assert live == {o.client_id for o in bot.oms.live()}
        assert "mm1-5" in live  # the filled level quoted again
    finally:
        await desk.stop()
    assert engine.open_orders(owner="mm1") == []  # a stopping bot takes its quotes down


async def test_a_limit_breach_kills_the_bot_scope_through_the_real_kill_switch(tmp_path):
    desk = make_desk(tmp_path, levels=1, limits={"max_position": "0.04"}, order_qty="0.05")
    breaches: list[RiskBreach] = []
    desk.bus.subscribe(RiskBreach, breaches.append)
    await desk.start()
    bot = desk.services["bots"]["mm1"]
    engine = desk.services["matching"]
    risk = desk.services["risk"]
    try:
        tick(desk, 65000.0)
        await bot.step()
        await bot.pump()
        # sizes are trimmed to the limit: 0.04 each side
        assert sorted((o.side.value, o.qty) for o in engine.open_orders(owner="mm1")) == [("buy", 40), ("sell", 40)]
        # an operator order adopted by nobody pushes nothing; a fill of the bid takes the bot to 0.04:
        await desk.router.submit(OrderRequest(symbol="BTC-USD", side=Side.SELL, qty=40, price=129900,
                                              tif=TimeInForce.IOC, client_id="t1", owner="operator"))
        assert bot.pnl.position == Decimal("0.040")
        assert breaches == []  # at the limit is not beyond it
        # A stray order under the bot's name (say, placed by hand) rests and is filled: the position is
        # real and counts, and it takes the bot beyond its limit.
        await desk.router.submit(OrderRequest(symbol="BTC-USD", side=Side.BUY, qty=10, price=129000,
                                              client_id="stray", owner="mm1"))
        await desk.router.submit(OrderRequest(symbol="BTC-USD", side=Side.SELL, qty=10, price=128000,
                                              tif=TimeInForce.IOC, client_id="t2", owner="operator"))
        assert bot.pnl.position == Decimal("0.050")
        await bot.step()
        assert [(b.rule, b.scope) for b in breaches if b.rule.startswith("mm.")] == [("mm.max_position", "bot:mm1")]
        assert risk.effective_state("mm1", "BTC-USD") == TradingState.HALTED
        assert engine.open_orders(owner="mm1") == []
        assert bot.state == "halted" and bot.reason.startswith("halted by risk")
    finally:
        await desk.stop()


async def test_the_running_bot_quotes_requotes_and_goes_stale_on_its_own(tmp_path):
    """autorun: the bot's own tasks (quoting loop + rate-limited sender) on the real clock."""
    import asyncio

    from engines.mm.events import MMBotStatus

    cfg = DeskConfig(sim={"enabled": False}, grid=[], fix={"enabled": False}, risk=NO_RULES,
                     matching={"journal": False},
                     mm=[{"name": "mm1", "symbol": "BTC-USD", "levels": 2, "order_qty": "0.05", "stale_after": 0.3,
                          "status_hz": 20}])
    desk = Desk(cfg, data_dir=tmp_path).build(BUILDERS)
    engine = desk.services["matching"]
    quoted = asyncio.Event()
    stale = asyncio.Event()

    def on_status(ev: MMBotStatus) -> None:
        if ev.open_orders == 4 and ev.state == "quoting" and len(engine.open_orders(owner="mm1")) == 4:
            quoted.set()
        if ev.state == "stale" and not engine.open_orders(owner="mm1"):
            stale.set()

    desk.bus.subscribe(MMBotStatus, on_status)
    await desk.start()
    try:
        tick(desk, 65000.0)
        await asyncio.wait_for(quoted.wait(), 5)
        await asyncio.wait_for(stale.wait(), 5)  # no further ticks: stale after 0.3 s, quotes pulled
        assert desk.services["bots"]["mm1"].reason.startswith("stale reference: no sim update for")
    finally:
        await desk.stop()
