"""Venue-mid reference feed, simulated takers, the mm builder, pause/resume and reconnect."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from websockets.asyncio.server import serve

from engines.bus import Bus
from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import PriceTick
from engines.feeds.venue_mid import VenueMidFeed
from engines.instruments import Instrument
from engines.marketdata import BBO
from engines.orders import Side, TimeInForce
from engines.runtime import Desk
from engines.sim.config import TakerConfig
from engines.sim.takers import SimTakers
from engines.venue import OrderRouter
from tests.test_mm_bot import Rig

BTC = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")
NO_RULES = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}}


async def test_venue_mid_feed_publishes_the_bbo_mid_and_nothing_for_a_one_sided_book():
    bus = Bus()
    feed = VenueMidFeed(bus, {"BTC-USD": BTC}, "sim")
    ticks: list[PriceTick] = []
    bus.subscribe(PriceTick, ticks.append)
    await feed.start()
    bus.publish(BBO(symbol="BTC-USD", bid_px=129948, bid_qty=5, ask_px=130053, ask_qty=5, venue="sim"))
    bus.publish(BBO(symbol="BTC-USD", bid_px=None, bid_qty=0, ask_px=130053, ask_qty=5, venue="sim"))
    bus.publish(BBO(symbol="BTC-USD", bid_px=1, bid_qty=5, ask_px=3, ask_qty=5, venue="other"))
    await feed.stop()
    assert [(t.symbol, t.price, t.source) for t in ticks] == [("BTC-USD", 65000.25, "mid:sim")]


def test_takers_are_seeded_and_biased_by_the_drift():
    def draws(seed: int, ref: float, mid: float) -> list[tuple[str, int, int]]:
        t = SimTakers(Bus(), OrderRouter(Bus()), {"BTC-USD": BTC}, TakerConfig(), seed=seed)
        t.reference["BTC-USD"] = ref
        t.mid["BTC-USD"] = mid
        out = []
        for _ in range(400):
            r = t.next_order("BTC-USD")
            assert r.tif is TimeInForce.IOC and r.owner == "sim-takers" and r.venue == "sim" and r.qty >= 1
            out.append((r.side.value, r.qty, r.price))
        return out

    a = draws(7, 65000.0, 65000.0)
    assert a == draws(7, 65000.0, 65000.0)  # same seed, same flow
    assert a != draws(8, 65000.0, 65000.0)
    buys_flat = sum(s == "buy" for s, _, _ in a)
    buys_up = sum(s == "buy" for s, _, _ in draws(7, 65065.0, 65000.0))  # reference 10 bps above the book
    buys_down = sum(s == "buy" for s, _, _ in draws(7, 64935.0, 65000.0))
    assert buys_down < buys_flat < buys_up
    t = SimTakers(Bus(), OrderRouter(Bus()), {"BTC-USD": BTC}, TakerConfig(), seed=7)
    t.reference["BTC-USD"] = 65065.0
    t.mid["BTC-USD"] = 65000.0
    assert abs(t.buy_probability("BTC-USD") - (0.5 + 0.35 * 0.9640275800758169)) < 1e-12  # tanh(2)
    buy = next(r for r in iter(lambda: t.next_order("BTC-USD"), None) if r.side is Side.BUY)
    assert buy.price == 130391  # ceil(65065 x 1.002 / 0.5) = ceil(130390.26): 20 bps through the reference


async def test_builder_makes_one_bot_per_table_with_its_feeds(tmp_path):
    cfg = DeskConfig(
        sim={"enabled": False}, grid=[], fix={"enabled": False}, risk=NO_RULES, matching={"journal": False},
        mm=[{"name": "a", "symbol": "BTC-USD"},
            {"name": "b", "symbol": "ETH-USD", "reference": "mid"},
            {"name": "c", "symbol": "BTC-USD", "reference": "binance", "reference_symbol": "btcusdt",
             "binance_url": "ws://127.0.0.1:1/ws"},
            {"name": "d", "symbol": "ETH-USD", "enabled": False}],
    )
    desk = Desk(cfg, data_dir=tmp_path).build(["engines.matching.service:build", "engines.mm.service:build"])
    assert sorted(desk.services["bots"]) == ["a", "b", "c"]
    assert sorted(desk.services["feeds"]) == ["feed-binance", "feed-mid-sim"]
    assert desk.services["feeds"]["feed-binance"].symbols == {"BTCUSDT": "BTC-USD"}
    assert [e.name for e in desk.engines] == ["matching", "feed-mid-sim", "feed-binance", "a", "b", "c"]
    assert desk.services["bots"]["a"].trade_source is desk.services["matching"]


async def test_pause_cancels_and_resume_quotes_again():
    rig = Rig()
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.bot.pause()
    await rig.bot.step()
    await rig.drain()
    assert rig.venue.open == {} and (rig.bot.state, rig.bot.reason) == ("paused", "paused by operator")
    rig.bot.resume()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    assert len(rig.venue.open) == 4 and rig.bot.state == "quoting"


async def test_venue_reconnect_reconciles():
    rig = Rig()
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.venue._connected = False
    await rig.bot.step()
    assert rig.bot.reason == "venue sim disconnected" and not rig.bot.quoting
    rig.venue.open.pop("mm1-1")  # lost while disconnected
    rig.venue._connected = True
    rig.tick(65000.0)
    await rig.bot.step()
    assert rig.bot.reconciles == 2
    assert rig.bot.last_reconcile["closed"] >= 1
    await rig.drain()  # the cancels queued while disconnected go out first
    await rig.bot.step()
    await rig.drain()
    assert sorted(rig.venue.open) == sorted(o.client_id for o in rig.bot.oms.live())
    assert len(rig.venue.open) == 4


async def test_a_bot_quotes_around_the_binance_reference(tmp_path):
    frames = ['{"u":1,"s":"BTCUSDT","b":"64999.0","B":"1","a":"65001.0","A":"1"}']

    async def handler(ws):
        await ws.recv()
        for f in frames:
            await ws.send(f)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        cfg = DeskConfig(
            sim={"enabled": False}, grid=[], fix={"enabled": False}, risk=NO_RULES, matching={"journal": False},
            mm=[{"name": "mmb", "symbol": "BTC-USD", "reference": "binance", "reference_symbol": "BTCUSDT",
                 "binance_url": f"ws://127.0.0.1:{port}/ws", "spread_bps": "8", "order_qty": "0.05"}],
        )
        desk = Desk(cfg, clock=ManualClock(), data_dir=tmp_path).build(
            ["engines.matching.service:build", "engines.risk.service:build", "engines.mm.service:build"])
        bot = desk.services["bots"]["mmb"]
        bot.autorun = False
        got = asyncio.Event()
        desk.bus.subscribe(PriceTick, lambda ev: got.set() if ev.source == "binance" else None)
        await desk.start()
        try:
            await asyncio.wait_for(got.wait(), 5)
            await bot.step()
            await bot.pump()
            book = sorted((o.side.value, o.price) for o in desk.services["matching"].open_orders(owner="mmb"))
            assert book == [("buy", 129948), ("sell", 130052)]  # 64974.0 / 65026.0 around the 65000.0 mid
        finally:
            await desk.stop()
    assert Path(tmp_path / "mm-mmb.sqlite").exists()


def test_off_grid_size_is_a_config_error(tmp_path):
    from engines.config import ConfigError

    cfg = DeskConfig(sim={"enabled": False}, grid=[], fix={"enabled": False}, matching={"journal": False},
                     mm=[{"name": "a", "symbol": "BTC-USD", "order_qty": "0.0005"}])
    try:
        Desk(cfg, data_dir=tmp_path).build(["engines.mm.service:build"])
    except ConfigError as exc:
        assert "mm 'a': BTC-USD: quantity 0.0005 is not a multiple of lot size 0.001" in str(exc)
    else:
        raise AssertionError("no ConfigError")


async def test_periodic_reconcile_cancels_an_unknown_order():
    from engines.orders import OrderRequest

    rig = Rig(reconcile_interval=60.0)
    await rig.bot.start()
    rig.tick(65000.0)
    await rig.bot.step()
    await rig.drain()
    rig.venue.place_unknown(OrderRequest(symbol="BTC-USD", side=Side.SELL, qty=5, price=140000,
                                         client_id="ghost", owner="mm1"))
    rig.clock.advance(59.0)
    rig.tick(65000.0)
    await rig.bot.step()
    assert "ghost" in rig.venue.open
    rig.clock.advance(1.0)
    rig.tick(65000.0)
    await rig.bot.step()
    assert "ghost" not in rig.venue.open and rig.bot.last_reconcile["canceled"] == 1
