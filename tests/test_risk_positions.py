from __future__ import annotations

import pytest

from engines.clock import ManualClock
from engines.events import PriceTick
from engines.marketdata import BBO
from engines.orders import Side
from tests.risk_venue import make_desk, order

NO_RULES = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}}


async def test_average_cost_realised_and_unrealised_pnl(tmp_path):
    # BTC-USD: tick 0.5 USD, lot 0.001 BTC -> one tick-lot is 0.0005 USD
    desk, venue = make_desk(tmp_path, risk=NO_RULES)
    book = desk.services["risk"].positions
    r = desk.router
    await r.submit(order(side=Side.BUY, qty=10, price=100_000, client_id="b1"))
    await r.submit(order(side=Side.BUY, qty=30, price=100_400, client_id="b2"))
    venue.fill("mm-btc", "b1", 10, fee=0.25)
    venue.fill("mm-btc", "b2", 30, fee=0.75)
    p = book.get("mm-btc", "BTC-USD")
    assert p.qty == 40
    assert p.avg_px == 100_300.0  # (10*100000 + 30*100400) / 40
    assert p.fees == 1.0
    # mark from a two-sided BBO mid: (100_500 + 100_700) / 2 = 100_600
    desk.bus.publish(BBO(symbol="BTC-USD", bid_px=100_500, bid_qty=1, ask_px=100_700, ask_qty=1))
    assert book.unrealised(p) == pytest.approx(300 * 40 * 0.0005)  # 6.0 USD
    # sell 25 at 100_700: realised (100_700 - 100_300) * 25 * 0.0005 = 5.0
    await r.submit(order(side=Side.SELL, qty=25, price=100_700, client_id="s1"))
    venue.fill("mm-btc", "s1", 25, fee=0.5)
    assert p.qty == 15 and p.avg_px == 100_300.0
    assert p.realised == pytest.approx(5.0)
    # sell 20 at 100_100: closes 15 (realised -1.5), opens short 5 at 100_100
    await r.submit(order(side=Side.SELL, qty=20, price=100_100, client_id="s2"))
    venue.fill("mm-btc", "s2", 20)
    assert p.qty == -5 and p.avg_px == 100_100.0
    assert p.realised == pytest.approx(3.5)
    # a PriceTick marks too (65_000 USD = 130_000 ticks): short 5 from 100_100 -> -(29_900 * 5 * 0.0005)
    desk.bus.publish(PriceTick(symbol="BTC-USD", price=65_000.0))
    assert book.unrealised(p) == pytest.approx(-74.75)
    assert book.pnl(p) == pytest.approx(3.5 - 74.75 - 1.5)
    assert book.total("desk") == pytest.approx(book.pnl(p))
    assert book.total("bot:mm-btc") == pytest.approx(book.pnl(p))
    assert book.total("instrument:ETH-USD") == 0.0


async def test_open_order_tracking_per_side(tmp_path):
    desk, venue = make_desk(tmp_path, risk=NO_RULES)
    tracker = desk.services["risk"].orders
    await desk.router.submit(order(side=Side.BUY, qty=10, client_id="b1"))
    await desk.router.submit(order(side=Side.SELL, qty=7, price=131_000, client_id="s1"))
    assert tracker.open_side_qty("mm-btc", "BTC-USD", Side.BUY) == 10
    assert tracker.open_side_qty("mm-btc", "BTC-USD", Side.SELL) == 7
    venue.fill("mm-btc", "b1", 4)
    assert tracker.open_side_qty("mm-btc", "BTC-USD", Side.BUY) == 6
    await venue.cancel("BTC-USD", "b1", "mm-btc")
    assert tracker.open_side_qty("mm-btc", "BTC-USD", Side.BUY) == 0
    assert tracker.has_open("BTC-USD")
    venue.fill("mm-btc", "s1", 7)
    assert not tracker.has_open("BTC-USD")
    assert tracker.orders == {}


async def test_day_pnl_and_drawdown_reset_at_utc_midnight(tmp_path):
    clock = ManualClock()  # 2026-01-01T00:00:00Z
    desk, venue = make_desk(tmp_path, risk=NO_RULES, clock=clock)
    book = desk.services["risk"].positions
    await desk.router.submit(order(side=Side.BUY, qty=10, price=100_000, client_id="b1"))
    venue.fill("mm-btc", "b1", 10)
    desk.bus.publish(BBO(symbol="BTC-USD", bid_px=102_000, bid_qty=1, ask_px=102_000, ask_qty=1))
    s = book.scope_pnl("desk")
    assert s.day_pnl == pytest.approx(10.0) and s.peak == pytest.approx(10.0)
    desk.bus.publish(BBO(symbol="BTC-USD", bid_px=99_000, bid_qty=1, ask_px=99_000, ask_qty=1))
    s = book.scope_pnl("desk")
    assert s.day_pnl == pytest.approx(-5.0) and s.drawdown == pytest.approx(15.0)
    clock.advance(86_400)
    s = book.scope_pnl("desk")
    assert s.day_pnl == 0.0 and s.peak == 0.0 and s.drawdown == 0.0
