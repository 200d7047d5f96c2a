"""The matching engine's public API: exact bus events, fees, lookups, conflation, re-entrancy, venue."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from engines.bus import Bus
from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import Event
from engines.instruments import Instrument
from engines.marketdata import BBO, Depth, Trade
from engines.matching.engine import MatchingEngine, SubmitResult
from engines.orders import (
    CancelRejected,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from engines.runtime import Desk

BTC = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")
ETH = Instrument("ETH-USD", Decimal("0.05"), Decimal("0.01"), 2, "ETH", "USD")


class Recorder:
    def __init__(self, bus: Bus) -> None:
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)

    def take(self, *types: type) -> list[Any]:
        out = [e for e in self.events if not types or isinstance(e, types)]
        self.events.clear()
        return out


@pytest.fixture
def bus() -> Bus:
    return Bus(ManualClock())


@pytest.fixture
def engine(bus: Bus) -> MatchingEngine:
    return MatchingEngine(bus, {"BTC-USD": BTC, "ETH-USD": ETH}, maker_fee_bps=1.0, taker_fee_bps=2.5, trade_history=3)


def req(side: Side, price: int | None, qty: int, owner: str = "a", cid: str = "", **kw: Any) -> OrderRequest:
    typ = OrderType.MARKET if price is None else OrderType.LIMIT
    return OrderRequest(symbol=kw.pop("symbol", "BTC-USD"), side=side, price=price, qty=qty, type=typ,
                        owner=owner, client_id=cid, **kw)


def test_resting_order_events_and_market_data(bus: Bus, engine: MatchingEngine) -> None:
    rec = Recorder(bus)
    res = engine.submit(req(Side.BUY, 130_000, 50, cid="b1"))
    assert res == SubmitResult(1, OrderStatus.NEW, "", 0, 50)
    acc, bbo, depth = rec.take()
    assert isinstance(acc, OrderAccepted)
    assert (acc.order_id, acc.client_id, acc.owner, acc.side, acc.price, acc.qty, acc.venue) == (
        1, "b1", "a", Side.BUY, 130_000, 50, "sim")
    assert isinstance(bbo, BBO) and (bbo.bid_px, bbo.bid_qty, bbo.ask_px, bbo.ask_qty) == (130_000, 50, None, 0)
    assert isinstance(depth, Depth) and depth.bids == ((130_000, 50),) and depth.asks == () and depth.book_seq == 1
    # a change that leaves BBO and depth as they were publishes no market data
    engine.submit(req(Side.SELL, 131_000, 5, owner="x", post_only=True))
    engine.cancel("BTC-USD", owner="x", order_id=2)
    assert [type(e) for e in rec.take()] == [OrderAccepted, BBO, Depth, OrderCanceled, BBO, Depth]
    assert engine.submit(req(Side.BUY, 129_000, 1)).status is OrderStatus.NEW
    assert [type(e) for e in rec.take()] == [OrderAccepted, Depth]  # BBO unchanged: not republished


def test_trade_and_fills_with_fees(bus: Bus, engine: MatchingEngine) -> None:
    engine.submit(req(Side.SELL, 130_000, 30, owner="maker", cid="s1"))
    rec = Recorder(bus)
    res = engine.submit(req(Side.BUY, 130_001, 50, owner="taker", cid="t1", tif=TimeInForce.IOC))
    assert res == SubmitResult(2, OrderStatus.EXPIRED, "IOC: unfilled quantity expired", 30, 0)
    acc, trade, fmaker, ftaker, expired = rec.take(OrderAccepted, Trade, Fill, OrderCanceled)
    assert isinstance(acc, OrderAccepted)
    # notional = 130000 ticks * 0.5 * 30 lots * 0.001 = 1950 USD; maker 1 bp, taker 2.5 bp
    assert (trade.trade_id, trade.price, trade.qty, trade.aggressor) == (1, 130_000, 30, Side.BUY)
    assert (trade.maker_order_id, trade.taker_order_id, trade.maker_owner, trade.taker_owner) == (1, 2, "maker", "taker")
    assert (trade.maker_fee, trade.taker_fee) == (0.195, 0.4875)
    assert (fmaker.order_id, fmaker.client_id, fmaker.side, fmaker.qty, fmaker.leaves_qty, fmaker.liquidity,
            fmaker.fee, fmaker.trade_id) == (1, "s1", Side.SELL, 30, 0, Liquidity.MAKER, 0.195, 1)
    assert (ftaker.order_id, ftaker.client_id, ftaker.side, ftaker.qty, ftaker.leaves_qty, ftaker.liquidity,
            ftaker.fee) == (2, "t1", Side.BUY, 30, 20, Liquidity.TAKER, 0.4875)
    assert (expired.status, expired.canceled_qty, expired.filled_qty, expired.reason) == (
        OrderStatus.EXPIRED, 20, 30, "IOC: unfilled quantity expired")
    assert engine.recent_trades("BTC-USD", 10) == [trade]
    st = engine.stats("BTC-USD")
    assert (st["volume_lots"], st["volume"], st["notional"], st["trade_count"], st["orders"], st["last_price"]) == (
        30, Decimal("0.030"), 1950.0, 1, 2, 130_000)
    view = engine.order("BTC-USD", owner="maker", client_id="s1")
    assert view is not None and view.status is OrderStatus.FILLED and view.filled_qty == 30
    assert view.lifecycle == (("new", ""), ("filled", ""))
    view = engine.order("BTC-USD", order_id=2)
    assert view is not None and view.lifecycle == (
        ("new", ""), ("partially_filled", ""), ("expired", "IOC: unfilled quantity expired"))


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (req(Side.BUY, 100, 1, symbol="NOPE"), "unknown symbol"),
        (req(Side.BUY, 100, 1, symbol="ETH-USD"), "quantity below minimum of 2 lots"),
        (req(Side.BUY, 100, 0), "quantity must be a positive integer number of lots"),
        (OrderRequest(symbol="BTC-USD", side=Side.BUY, price=100.5, qty=1), "price must be a positive integer number of ticks"),  # type: ignore[arg-type]
        (OrderRequest(symbol="BTC-USD", side=Side.BUY, price=None, qty=1), "limit order needs a price"),
        (OrderRequest(symbol="BTC-USD", side=Side.BUY, price=5, qty=1, type=OrderType.MARKET),
         "market order must not have a price"),
    ],
)
def test_rejects_name_the_reason(bus: Bus, engine: MatchingEngine, request_: OrderRequest, reason: str) -> None:
    rec = Recorder(bus)
    res = engine.submit(request_)
    assert res == SubmitResult(None, OrderStatus.REJECTED, reason, 0, 0)
    (ev,) = rec.take()
    assert isinstance(ev, OrderRejected) and ev.reason == reason and ev.source == "sim"


def test_duplicate_client_id_and_post_only(bus: Bus, engine: MatchingEngine) -> None:
    engine.submit(req(Side.SELL, 100, 5, cid="x"))
    assert engine.submit(req(Side.SELL, 101, 5, cid="x")).reason == "duplicate client_id for this owner"
    assert engine.submit(req(Side.SELL, 101, 5, owner="b", cid="x")).status is OrderStatus.NEW  # other owner
    res = engine.submit(req(Side.BUY, 100, 5, owner="c", post_only=True))
    assert (res.status, res.reason) == (OrderStatus.REJECTED, "post-only order would cross")


def test_cancel_by_client_id_and_by_id(bus: Bus, engine: MatchingEngine) -> None:
    engine.submit(req(Side.BUY, 100, 5, cid="c1"))
    engine.submit(req(Side.BUY, 99, 5, cid="c2"))
    rec = Recorder(bus)
    assert engine.cancel("BTC-USD", owner="a", client_id="c1", reason="operator")
    (ev,) = rec.take(OrderCanceled)
    assert (ev.order_id, ev.client_id, ev.canceled_qty, ev.status, ev.reason) == (1, "c1", 5, OrderStatus.CANCELED, "operator")
    assert not engine.cancel("BTC-USD", owner="a", client_id="c1")
    assert not engine.cancel("BTC-USD", owner="zz", order_id=2)  # not the owner's
    rej = rec.take(CancelRejected)
    assert [(r.client_id, r.order_id, r.reason) for r in rej] == [("c1", None, "order not open"), ("", 2, "order not open")]
    assert engine.cancel("BTC-USD", owner=None, order_id=2)  # operator / kill switch: any owner
    assert engine.open_orders() == []
    # the client id is free again once the order is closed
    assert engine.submit(req(Side.BUY, 100, 5, cid="c1")).status is OrderStatus.NEW


def test_replace_priority_and_client_id(bus: Bus, engine: MatchingEngine) -> None:
    engine.submit(req(Side.SELL, 100, 5, owner="a", cid="a1"))
    engine.submit(req(Side.SELL, 100, 5, owner="b", cid="b1"))
    rec = Recorder(bus)
    res = engine.replace("BTC-USD", owner="a", client_id="a1", new_client_id="a2", price=None, qty=3)
    assert res == SubmitResult(1, OrderStatus.NEW, "", 0, 3)
    (ev,) = rec.take(OrderReplaced)
    assert (ev.order_id, ev.client_id, ev.orig_client_id, ev.price, ev.qty, ev.kept_priority) == (1, "a2", "a1", 100, 3, True)
    assert engine.order("BTC-USD", owner="a", client_id="a2").qty == 3  # type: ignore[union-attr]
    assert engine.order("BTC-USD", owner="a", client_id="a1") is None
    res = engine.replace("BTC-USD", owner="b", client_id="b1", new_client_id="", price=None, qty=6)
    (ev,) = rec.take(OrderReplaced)
    assert ev.kept_priority is False and ev.client_id == "b1"
    engine.submit(req(Side.BUY, 100, 4, owner="t"))
    fills = [f for f in rec.take(Fill) if f.liquidity is Liquidity.MAKER]
    assert [(f.order_id, f.qty) for f in fills] == [(1, 3), (2, 1)]  # a kept its place, b went behind
    bad = engine.replace("BTC-USD", owner="a", order_id=99, new_client_id="q", price=None, qty=1)
    assert (bad.status, bad.reason) == (OrderStatus.REJECTED, "unknown order")
    assert isinstance(rec.take()[0], CancelRejected)


def test_replace_post_only_that_would_cross_is_refused(engine: MatchingEngine) -> None:
    engine.submit(req(Side.SELL, 100, 5, owner="m"))
    engine.submit(req(Side.BUY, 98, 5, owner="p", cid="p1", post_only=True))
    res = engine.replace("BTC-USD", owner="p", client_id="p1", new_client_id="", price=100, qty=5)
    assert (res.status, res.reason, res.leaves_qty) == (OrderStatus.REJECTED, "post-only order would cross", 5)
    assert engine.depth("BTC-USD", 5) == (((98, 5),), ((100, 5),))


def test_cancel_all_by_owner_and_symbol(engine: MatchingEngine) -> None:
    engine.submit(req(Side.BUY, 100, 5, owner="bot"))
    engine.submit(req(Side.BUY, 99, 5, owner="bot", symbol="ETH-USD"))
    engine.submit(req(Side.BUY, 98, 5, owner="other"))
    res = engine.cancel_all(owner="bot", symbol="BTC-USD", reason="kill")
    assert [(r.symbol, r.order_id, r.owner, r.confirmed, r.reason) for r in res] == [("BTC-USD", 1, "bot", True, "kill")]
    assert [(o.symbol, o.order_id) for o in engine.open_orders(owner="bot")] == [("ETH-USD", 2)]
    assert len(engine.cancel_all()) == 2 and engine.open_orders() == []


def test_cancel_all_events_and_results_are_the_dataclasses(bus: Bus, engine: MatchingEngine) -> None:
    from engines.venue import CancelResult

    engine.submit(req(Side.BUY, 100, 5, owner="bot", cid="b1"))
    engine.submit(req(Side.SELL, 110, 3, owner="bot"))
    engine.submit(req(Side.SELL, 100, 2, owner="x"))  # b1 partly filled: 3 left
    rec = Recorder(bus)
    res = engine.cancel_all(owner="bot", reason="kill")
    evs = rec.take(OrderCanceled)
    assert [dataclasses.replace(e, seq=0, ts=0) for e in evs] == [
        OrderCanceled(symbol="BTC-USD", order_id=1, client_id="b1", owner="bot", side=Side.BUY, price=100,
                      canceled_qty=3, filled_qty=2, status=OrderStatus.CANCELED, reason="kill"),
        OrderCanceled(symbol="BTC-USD", order_id=2, client_id="", owner="bot", side=Side.SELL, price=110,
                      canceled_qty=3, filled_qty=0, status=OrderStatus.CANCELED, reason="kill"),
    ]
    assert all(type(e) is OrderCanceled for e in evs) and evs[1].seq == evs[0].seq + 1
    assert res == [CancelResult("sim", "BTC-USD", 1, "b1", "bot", True, "kill"),
                   CancelResult("sim", "BTC-USD", 2, "", "bot", True, "kill")]
    assert all(type(r) is CancelResult for r in res)
    view = engine.order("BTC-USD", owner="bot", client_id="b1")
    assert view is not None and (view.status, view.reason, view.lifecycle[-1]) == (
        OrderStatus.CANCELED, "kill", ("canceled", "kill"))
    # the client id is free again; the canceled order is still found by it until reused
    assert engine.submit(req(Side.BUY, 99, 1, owner="bot", cid="b1")).status is OrderStatus.NEW


def test_stp_cancel_resting_publishes_cancel_of_the_resting_order(bus: Bus, engine: MatchingEngine) -> None:
    engine.submit(req(Side.SELL, 100, 5, owner="me", cid="mine"))
    engine.submit(req(Side.SELL, 100, 5, owner="you"))
    rec = Recorder(bus)
    res = engine.submit(req(Side.BUY, 100, 5, owner="me"))
    assert res.status is OrderStatus.FILLED
    kinds = [(type(e).__name__, getattr(e, "order_id", None)) for e in rec.take(OrderAccepted, OrderCanceled, Trade, Fill)]
    assert kinds == [("OrderAccepted", 3), ("OrderCanceled", 1), ("Trade", None), ("Fill", 2), ("Fill", 3)]
    assert engine.order("BTC-USD", owner="me", client_id="mine").reason == "self-trade prevention"  # type: ignore[union-attr]


def test_trade_history_is_a_ring_buffer(engine: MatchingEngine) -> None:
    for i in range(5):
        engine.submit(req(Side.SELL, 100 + i, 1, owner="m"))
    engine.submit(req(Side.BUY, None, 5, owner="t"))
    trades = engine.recent_trades("BTC-USD", 10)
    assert [t.trade_id for t in trades] == [3, 4, 5]  # trade_history=3
    assert [t.trade_id for t in engine.recent_trades("BTC-USD", 2)] == [4, 5]
    assert engine.stats("BTC-USD")["trade_count"] == 5


def test_reentrant_subscriber_events_follow_the_outer_call(bus: Bus, engine: MatchingEngine) -> None:
    """A bot that re-quotes from inside its fill handler: its events come after the whole outer call."""
    order: list[tuple[str, int]] = []

    def on_fill(f: Fill) -> None:
        if f.owner == "bot" and f.leaves_qty == 0:
            engine.submit(req(Side.SELL, 105, 1, owner="bot"))

    bus.subscribe(Fill, on_fill)
    bus.subscribe(Event, lambda e: order.append((type(e).__name__, getattr(e, "order_id", 0) or 0)))
    engine.submit(req(Side.SELL, 100, 1, owner="bot"))
    order.clear()
    engine.submit(req(Side.BUY, 100, 1, owner="t"))
    names = [n for n, _ in order if n not in ("BBO", "Depth")]
    assert names == ["OrderAccepted", "Trade", "Fill", "Fill", "OrderAccepted"]
    assert engine.bbo("BTC-USD").ask_px == 105


async def test_market_data_is_conflated_per_loop_turn(bus: Bus, engine: MatchingEngine) -> None:
    rec = Recorder(bus)
    for i in range(10):
        engine.submit(req(Side.BUY, 100 + i, 1))
    assert rec.take(BBO, Depth) == []  # nothing yet: published once the loop turns
    await asyncio.sleep(0)
    bbo, depth = rec.take(BBO, Depth)
    assert bbo.bid_px == 109 and len(depth.bids) == 10


async def test_service_builds_engine_and_venue_on_the_router(desk_env: Any) -> None:
    desk = Desk(DeskConfig(), clock=ManualClock()).build(["engines.matching.service:build"])
    engine = desk.services["matching"]
    assert isinstance(engine, MatchingEngine) and sorted(engine.symbols) == ["BTC-USD", "ETH-USD"]
    await desk.start()
    try:
        venue = desk.router.venue("sim")
        assert venue.connected
        ok = await desk.router.submit(req(Side.BUY, 130_000, 50, owner="bot", cid="q1"))
        assert ok
        (oo,) = await venue.open_orders(owner="bot")
        assert (oo.venue, oo.client_id, oo.price, oo.qty) == ("sim", "q1", 130_000, 50)
        res = await venue.cancel("BTC-USD", "q1", "bot")
        assert res.confirmed and res.order_id == oo.order_id
        assert (desk.data_dir / "matching.sqlite").exists()
    finally:
        await desk.stop()


def test_fast_event_constructors_build_equal_events() -> None:
    import dataclasses

    from engines.events import event_types, to_json
    from engines.matching import fastevents as fe
    from engines.orders import OrderRejected, OrderReplaced
    from engines.venue import CancelResult

    acc = dict(symbol="S", order_id=1, client_id="c", owner="o", side=Side.BUY, type=OrderType.LIMIT,
               tif=TimeInForce.IOC, price=5, qty=2, venue="v")
    can = dict(symbol="S", order_id=1, client_id="c", owner="o", side=Side.SELL, price=None, canceled_qty=3,
               filled_qty=1, status=OrderStatus.EXPIRED, reason="r")
    fill = dict(symbol="S", order_id=1, client_id="c", owner="o", side=Side.SELL, price=5, qty=2, leaves_qty=1,
                liquidity=Liquidity.MAKER, fee=0.5, trade_id=9, venue="v")
    trade = dict(symbol="S", trade_id=9, price=5, qty=2, aggressor=Side.BUY, maker_order_id=1, taker_order_id=2,
                 maker_owner="m", taker_owner="t", maker_fee=0.1, taker_fee=-0.2)
    rej = dict(symbol="S", client_id="c", owner="o", side=Side.BUY, price=None, qty=1, reason="r", source="sim")
    rep = dict(symbol="S", order_id=1, client_id="c2", orig_client_id="c", owner="o", side=Side.BUY, price=7,
               qty=3, kept_priority=False, venue="v")
    res = dict(venue="v", symbol="S", order_id=None, client_id="c", owner="o", confirmed=True)
    cases = ((fe.new_accepted, OrderAccepted, acc), (fe.new_canceled, OrderCanceled, can),
             (fe.new_fill, Fill, fill), (fe.new_trade, Trade, trade), (fe.new_rejected, OrderRejected, rej),
             (fe.new_replaced, OrderReplaced, rep), (fe.new_cancel_result, CancelResult, res))
    for fast, cls, kw in cases:
        ref = cls(**kw)
        for ev in (fast(**kw), fast(*kw.values())):  # by keyword and positionally (the engine's way)
            assert type(ev) is cls and ev == ref and hash(ev) == hash(ref) and repr(ev) == repr(ref)
            with pytest.raises(dataclasses.FrozenInstanceError):  # still immutable
                ev.symbol = "X"  # type: ignore[misc]
            with pytest.raises(dataclasses.FrozenInstanceError):
                del ev.symbol  # type: ignore[misc]
            if cls is not CancelResult:
                assert to_json(ev) == to_json(ref)
    assert not [n for n in event_types() if n.startswith("_Fast")]  # the twins stay out of the registry


def test_to_grid_converts_and_names_off_grid_values(engine: MatchingEngine) -> None:
    from engines.instruments import OffGridError

    assert engine.to_grid("BTC-USD", "65000.5", "0.05") == (130_001, 50)
    assert engine.to_grid("BTC-USD", None, Decimal("1")) == (None, 1000)
    with pytest.raises(OffGridError, match=r"BTC-USD: price 65000.3 is not a multiple of tick size 0.5"):
        engine.to_grid("BTC-USD", "65000.3", "1")
    with pytest.raises(OffGridError, match=r"quantity 0.0005 is not a multiple of lot size 0.001"):
        engine.to_grid("BTC-USD", "65000", "0.0005")
    with pytest.raises(OffGridError, match="quantity 0 must be positive"):
        engine.to_grid("BTC-USD", "65000", "0")


def test_closed_order_history_is_bounded(bus: Bus) -> None:
    engine = MatchingEngine(bus, {"BTC-USD": BTC}, closed_history=10)
    for i in range(200):
        engine.submit(req(Side.BUY, 100, 1, cid=f"x{i}", tif=TimeInForce.IOC))
    assert len(engine._closed) <= engine._closed_cap and len(engine._closed_cid) <= engine._closed_cap
    assert engine.order("BTC-USD", owner="a", client_id="x0") is None  # forgotten
    view = engine.order("BTC-USD", owner="a", client_id="x199")
    assert view is not None and view.status is OrderStatus.EXPIRED


def test_event_stream_accounts_for_every_lot() -> None:
    """3,000 seeded operations (limits, IOC, market, cancels, replaces, STP): from the events alone,
    every order's lots are filled, canceled/expired or still resting, fills pair up with trades, and
    fees follow the formula."""
    import random

    from tests.matching_crash_child import SYMBOL, make_engine, step

    bus = Bus(ManualClock())
    rec = Recorder(bus)
    engine = make_engine(bus, None)
    rng = random.Random(5)
    for n in range(3000):
        step(engine, rng, n)
    entered: dict[int, int] = {}
    filled: dict[int, int] = {}
    gone: dict[int, int] = {}
    trades: dict[int, Trade] = {}
    fills_by_trade: dict[int, list[Fill]] = {}
    for ev in rec.take():
        if isinstance(ev, OrderAccepted):
            entered[ev.order_id] = ev.qty
        elif isinstance(ev, OrderReplaced):
            # the open quantity becomes ev.qty: what was open before is replaced
            open_before = entered[ev.order_id] - filled.get(ev.order_id, 0) - gone.get(ev.order_id, 0)
            entered[ev.order_id] += ev.qty - open_before
        elif isinstance(ev, Fill):
            filled[ev.order_id] = filled.get(ev.order_id, 0) + ev.qty
            fills_by_trade.setdefault(ev.trade_id, []).append(ev)
        elif isinstance(ev, OrderCanceled):
            gone[ev.order_id] = gone.get(ev.order_id, 0) + ev.canceled_qty
        elif isinstance(ev, Trade):
            trades[ev.trade_id] = ev
    assert len(trades) > 100 and any(isinstance(v, int) for v in gone.values())
    resting = {o.order_id: o.qty for o in engine.open_orders()}
    for oid, lots in entered.items():
        assert lots == filled.get(oid, 0) + gone.get(oid, 0) + resting.get(oid, 0), oid
    for tid, t in trades.items():
        maker, taker = fills_by_trade[tid]
        assert (maker.order_id, taker.order_id) == (t.maker_order_id, t.taker_order_id)
        assert maker.qty == taker.qty == t.qty and maker.price == taker.price == t.price
        assert maker.liquidity is Liquidity.MAKER and taker.liquidity is Liquidity.TAKER
        assert t.maker_owner != t.taker_owner  # self-trade prevention (cancel_resting)
        notional = Decimal(t.price) * Decimal("0.5") * t.qty * Decimal("0.001")
        fees = [float((notional * bps / 10_000).quantize(Decimal("1e-8"), ROUND_HALF_UP)) for bps in (1, Decimal("2.5"))]
        assert [t.maker_fee, t.taker_fee] == fees
    engine.book(SYMBOL).check()


def test_fees_are_exact_decimals_rounded_half_away_from_zero(bus: Bus) -> None:
    engine = MatchingEngine(bus, {"BTC-USD": BTC}, maker_fee_bps="-1.5", taker_fee_bps="2.5")
    rec = Recorder(bus)
    engine.submit(req(Side.SELL, 1, 1, owner="m"))
    engine.submit(req(Side.BUY, 1, 1, owner="t"))
    (t,) = rec.take(Trade)
    # notional 1 tick * 0.5 * 1 lot * 0.001 = 0.0005: taker 1.25e-7 -> 1.3e-7, maker rebate -7.5e-8 -> -8e-8
    assert (t.taker_fee, t.maker_fee) == (1.3e-7, -8e-8)


def _batch_script(engine: MatchingEngine) -> list[Any]:
    results: list[Any] = [
        engine.submit(req(Side.SELL, 100, 5, owner="m", cid="s1")),
        engine.submit(req(Side.SELL, 101, 5, owner="m", cid="s2")),
        engine.submit(req(Side.BUY, 101, 7, owner="t", cid="b1")),  # fills s1 and 2 of s2
        engine.submit(req(Side.BUY, 90, 1, owner="t", cid="b2", tif=TimeInForce.IOC)),  # expires
        engine.submit(req(Side.BUY, 0, 1, owner="t", cid="bad")),  # rejected
        engine.replace("BTC-USD", owner="m", client_id="s2", new_client_id="s3", price=102, qty=4),
        engine.cancel("BTC-USD", owner="m", client_id="s3"),
        engine.cancel("BTC-USD", owner="m", client_id="nope"),
        engine.submit(req(Side.BUY, 95, 2, owner="q", cid="q1")),
        engine.cancel_all(owner="q", reason="bulk"),
    ]
    return results


def test_batch_publishes_the_same_events_in_the_same_order_at_the_end() -> None:
    def fresh() -> tuple[MatchingEngine, Recorder]:
        bus = Bus(ManualClock())
        return MatchingEngine(bus, {"BTC-USD": BTC, "ETH-USD": ETH}), Recorder(bus)

    plain, plain_rec = fresh()
    expected_results = _batch_script(plain)
    batched, rec = fresh()
    with batched.batch() as e:
        assert e is batched
        with batched.batch():  # a nested batch joins the outer one
            results = _batch_script(batched)
        assert rec.events == []  # nothing published until the outer block ends
    assert results == expected_results

    def strip(events: list[Event]) -> list[Any]:  # seq/ts aside (market data conflates differently)
        return [
            dataclasses.replace(ev, seq=0, ts=0) for ev in events if not isinstance(ev, BBO | Depth)
        ]

    assert strip(rec.events) == strip(plain_rec.events) and len(strip(rec.events)) == 17
    assert [ev.seq for ev in rec.events] == list(range(1, len(rec.events) + 1))
    assert rec.events[-1].__class__ in (BBO, Depth)  # market data once, after the batch


def test_cancel_all_of_everything_closes_every_client_id(engine: MatchingEngine) -> None:
    engine.submit(req(Side.BUY, 100, 5, owner="a", cid="x"))
    engine.submit(req(Side.BUY, 99, 5, owner="b", cid="x", symbol="ETH-USD"))
    engine.submit(req(Side.SELL, 120, 5, owner="b"))
    engine.submit(req(Side.SELL, 100, 5, owner="c", cid="gone"))  # fills a's x: x is closed already
    engine.submit(req(Side.BUY, 98, 1, owner="a", cid="x"))  # the client id reused by a live order
    assert len(engine.cancel_all(reason="kill")) == 3 and engine._by_client == {}
    view = engine.order("BTC-USD", owner="a", client_id="x")
    assert view is not None and (view.order_id, view.status, view.reason) == (5, OrderStatus.CANCELED, "kill")
    view = engine.order("ETH-USD", owner="b", client_id="x")
    assert view is not None and (view.order_id, view.status) == (2, OrderStatus.CANCELED)
    assert engine.submit(req(Side.BUY, 98, 1, owner="a", cid="x")).status is OrderStatus.NEW


async def test_a_big_cancel_all_publishes_everything_and_frees_its_batch_later(bus: Bus, engine: MatchingEngine) -> None:
    for i in range(1500):
        engine.submit(req(Side.BUY, 50 + i % 40, 1, owner=f"o{i % 3}", cid=f"c{i}"))
    rec = Recorder(bus)
    assert len(engine.cancel_all(reason="kill")) == 1500
    canceled = rec.take(OrderCanceled)
    assert [e.order_id for e in canceled] == list(range(1, 1501))
    assert engine._out == [] and engine.open_orders() == []
    await asyncio.sleep(0)  # the published batch is released on the next loop turn
    res = engine.submit(req(Side.SELL, 60, 1, owner="z", cid="after"))
    assert res.status is OrderStatus.NEW and [type(e) for e in rec.take(OrderAccepted)] == [OrderAccepted]


def test_unfrozen_events_are_stamped_and_frozen_by_the_bus_before_anyone_sees_them() -> None:
    from engines.bus import register_unfrozen
    from engines.matching import fastevents as fe

    bus = Bus(ManualClock())
    seen: list[Event] = []
    bus.subscribe(Event, lambda ev: seen.append(ev) or None)
    q = bus.queue(policy="lossless")
    fill = dict(symbol="S", order_id=1, client_id="c", owner="o", side=Side.SELL, price=5, qty=2, leaves_qty=1,
                liquidity=Liquidity.MAKER, fee=0.5, trade_id=9, venue="v")
    acc = dict(symbol="S", order_id=1, client_id="c", owner="o", side=Side.BUY, type=OrderType.LIMIT,
               tif=TimeInForce.IOC, price=5, qty=2, venue="v")
    early = fe.unfrozen_fill(*fill.values())
    assert fe.freeze(early) is early and type(early) is Fill  # handed out before publishing: frozen first
    batch = [fe.unfrozen_accepted(*acc.values()), Fill(**fill), early, fe.unfrozen_fill(**fill)]
    bus.publish_many(batch)
    assert [type(ev) for ev in seen] == [OrderAccepted, Fill, Fill, Fill] and seen == q.drain()
    assert [ev.seq for ev in seen] == [1, 2, 3, 4] and len({ev.ts for ev in seen}) == 1
    assert seen[0] == dataclasses.replace(OrderAccepted(**acc), seq=1, ts=seen[0].ts)
    for i, ev in enumerate(seen[1:], 2):
        assert ev == dataclasses.replace(Fill(**fill), seq=i, ts=ev.ts) and hash(ev) == hash(ev)
        with pytest.raises(dataclasses.FrozenInstanceError):
            ev.qty = 3  # type: ignore[misc]
    with pytest.raises(TypeError):  # a stand-in must be a same-layout subclass
        register_unfrozen(Fill, OrderAccepted)


def test_trade_history_inside_a_batch_hands_out_frozen_trades(bus: Bus, engine: MatchingEngine) -> None:
    rec = Recorder(bus)
    with engine.batch():
        engine.submit(req(Side.SELL, 100, 1, owner="m"))
        engine.submit(req(Side.BUY, 100, 1, owner="t"))
        last = engine.last_trade("BTC-USD")
        assert type(last) is Trade and last.seq == 0 and engine.recent_trades("BTC-USD") == [last]
    assert [t for t in rec.take(Trade)] == [last] and last.seq > 0  # then published (stamped) as usual


def test_closed_orders_read_back_exactly_as_their_last_state() -> None:
    """Closed orders are kept as compact tuples (a bulk cancel's as the order lists): every one reads
    back as the OrderView built from the order's final book list and engine record (the old way)."""
    import gc
    import random

    from engines.matching.engine import _STATUS
    from engines.matching.engine import OrderView as View

    class Keep:  # a stand-in journal: keeps every order list the engine records (oid -> latest)
        def __init__(self) -> None:
            self.orders: dict[int, Any] = {}
            self.events: list[Any] = []
            self.trades: list[Any] = []
            self.idle = False

        def record_bulk_cancel(self, symbol: str, owner: Any, reason: str, ids: Any, qtys: Any, evs: Any) -> None:
            for oid in ids:
                self.orders[oid] = engine._closed[oid]

    bus = Bus(ManualClock())
    engine = MatchingEngine(bus, {"BTC-USD": BTC, "ETH-USD": ETH})
    keep = Keep()
    engine.journal = keep  # type: ignore[assignment]
    rng = random.Random(7)
    owners = ["a", "b", "c"]
    for i in range(3000):
        sym = rng.choice(["BTC-USD", "ETH-USD"])
        owner = rng.choice(owners)
        r = rng.random()
        if r < 0.2 and engine.book(sym).orders:
            oid = rng.choice(list(engine.book(sym).orders))
            engine.cancel(sym, owner=None, order_id=oid, reason=rng.choice(["", "why"]))
        elif r < 0.3 and engine.book(sym).orders:
            oid = rng.choice(list(engine.book(sym).orders))
            engine.replace(sym, owner=None, order_id=oid, price=rng.choice([None, rng.randint(95, 105)]),
                           qty=rng.randint(1, 6), new_client_id=rng.choice(["", f"r{i}"]))
        else:
            kind = rng.random()
            cid = rng.choice(["", f"c{i}"])
            if kind < 0.1:
                engine.submit(req(Side.BUY if rng.random() < 0.5 else Side.SELL, None, rng.randint(1, 5), owner, cid,
                                  symbol=sym))
            else:
                tif = rng.choice([TimeInForce.GTC] * 6 + [TimeInForce.IOC, TimeInForce.FOK])
                engine.submit(req(Side.BUY if rng.random() < 0.5 else Side.SELL, rng.randint(95, 105),
                                  rng.randint(1, 6), owner, cid, tif=tif, venue="v2", symbol=sym,
                                  post_only=tif is TimeInForce.GTC and rng.random() < 0.1))
    for i in range(5):  # resting orders of "a" for the bulk cancel
        engine.submit(req(Side.BUY, 50 + i, 2, "a", symbol="ETH-USD"))
    assert len(engine.cancel_all(owner="a", reason="bulk")) >= 5
    checked = set()
    for oid, o in keep.orders.items():
        if o[6] <= 1:
            continue
        rec, rq = o[8], o[8][0]
        want = View(order_id=oid, symbol=rq.symbol, side=rq.side, type=rq.type, tif=rq.tif, price=o[2], qty=rec[2],
                    filled_qty=o[5], leaves_qty=0, status=_STATUS[o[6]], reason=rec[3], owner=o[4],
                    client_id=rec[1], post_only=rq.post_only, venue=rq.venue, lifecycle=rec[4])
        assert engine.order(rq.symbol, order_id=oid) == want
        assert engine.order(rq.symbol, owner=o[4], order_id=oid) == want
        assert engine.order(rq.symbol, owner="nobody", order_id=oid) is None
        assert engine.order("ETH-USD" if rq.symbol == "BTC-USD" else "BTC-USD", order_id=oid) is None
        if rec[1] and engine._closed_cid.get((o[4], rec[1])) == oid:
            assert engine.order(rq.symbol, owner=o[4], client_id=rec[1]) == want
        checked.add((o[6], type(engine._closed[oid]).__name__, rq.tif, rq.type))
    statuses = {c[0] for c in checked}
    assert statuses == {2, 3, 5} and {c[1] for c in checked} == {"tuple", "list"}  # filled/canceled/expired
    # The compact records hold nothing the cyclic GC must keep walking. Two collections: a record is
    # untracked only once its lifecycle entries are, and in a fresh process (this test run alone) the
    # shared entry tuples may be examined after the first records that hold them; a desk's later
    # collections see them untracked. (One collection failed whenever this test ran first.)
    gc.collect()
    gc.collect()
    assert not [c for c in engine._closed.values() if type(c) is tuple and gc.is_tracked(c)]
    assert {c[2] for c in checked} == set(TimeInForce) and {c[3] for c in checked} == set(OrderType)
