from __future__ import annotations

from engines.clock import ManualClock
from engines.orders import OrderRejected, OrderType, Side
from engines.risk.events import TradingState, TradingStateChanged
from tests.risk_venue import make_desk, order

NO_LIMITS = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}}


def _rejections(desk):
    out: list[OrderRejected] = []
    desk.bus.subscribe(OrderRejected, out.append)
    return out


async def test_effective_state_is_most_restrictive_and_changes_are_published(tmp_path):
    desk, _ = make_desk(tmp_path, risk=NO_LIMITS)
    risk = desk.services["risk"]
    changes: list[TradingStateChanged] = []
    desk.bus.subscribe(TradingStateChanged, changes.append)
    assert risk.effective_state("mm-btc", "BTC-USD") is TradingState.ACTIVE
    risk.set_state("instrument:BTC-USD", TradingState.REDUCING, reason="vol", source="console")
    assert risk.effective_state("mm-btc", "BTC-USD") is TradingState.REDUCING
    assert risk.effective_state("mm-btc", "ETH-USD") is TradingState.ACTIVE
    risk.set_state("bot:mm-btc", TradingState.HALTED, reason="x", source="cli")
    assert risk.effective_state("mm-btc", "BTC-USD") is TradingState.HALTED
    assert risk.effective_state("other", "BTC-USD") is TradingState.REDUCING
    assert [(c.scope, c.previous, c.state, c.source) for c in changes] == [
        ("instrument:BTC-USD", TradingState.ACTIVE, TradingState.REDUCING, "console"),
        ("bot:mm-btc", TradingState.ACTIVE, TradingState.HALTED, "cli"),
    ]
    assert not risk.set_state("bot:mm-btc", TradingState.HALTED, reason="again", source="cli")
    assert len(changes) == 2


async def test_reducing_allows_only_orders_that_reduce_the_position(tmp_path):
    desk, venue = make_desk(tmp_path, risk=NO_LIMITS)
    rejected = _rejections(desk)
    router, risk = desk.router, desk.services["risk"]
    assert await router.submit(order(side=Side.BUY, qty=10, client_id="b1"))
    venue.fill("mm-btc", "b1", 10)  # long 10 lots
    risk.set_state("desk", TradingState.REDUCING, reason="wind down", source="console")

    assert not await router.submit(order(side=Side.BUY, qty=1, client_id="b2"))
    assert not await router.submit(order(side=Side.SELL, qty=11, client_id="s-too-big"))  # would flip short
    assert await router.submit(order(side=Side.SELL, qty=6, client_id="s1", price=130_010))
    # 6 already resting on the sell side: 5 more would sell 11 in the worst case
    assert not await router.submit(order(side=Side.SELL, qty=5, client_id="s2", price=130_010))
    assert await router.submit(order(side=Side.SELL, qty=4, client_id="s3", price=130_010))
    # another owner has no position: nothing it sends reduces
    assert not await router.submit(order(side=Side.SELL, qty=1, owner="grid-eth", client_id="g1"))
    assert [r.client_id for r in rejected] == ["b2", "s-too-big", "s2", "g1"]
    assert rejected[0].reason == "trading reducing (desk): only orders that reduce the position are allowed"
    assert all(r.source == "risk" for r in rejected)


async def test_halted_refuses_everything_but_the_kill_switch_flatten(tmp_path):
    desk, venue = make_desk(tmp_path, risk=NO_LIMITS)
    rejected = _rejections(desk)
    router, risk = desk.router, desk.services["risk"]
    assert await router.submit(order(side=Side.BUY, qty=10, client_id="b1"))
    venue.fill("mm-btc", "b1", 10)
    risk.set_state("instrument:BTC-USD", TradingState.HALTED, reason="kill", source="cli")
    assert not await router.submit(order(side=Side.SELL, qty=10, client_id="s1", reduce_only=True))
    assert rejected[-1].reason == "trading halted (instrument:BTC-USD): no new orders"
    # ETH is not halted
    assert await router.submit(order(symbol="ETH-USD", price=64_000, client_id="e1"))
    # the kill switch's flatten id passes once
    risk.gate.allow_flatten("kill-flatten-1")
    flat = order(
        side=Side.SELL,
        qty=10,
        client_id="kill-flatten-1",
        reduce_only=True,
        type=OrderType.MARKET,
        price=None,
    )
    assert await router.submit(flat)
    assert not await router.submit(
        order(side=Side.SELL, qty=10, client_id="kill-flatten-1", reduce_only=True)
    )


async def test_order_qty_notional_and_position_limits(tmp_path):
    # BTC-USD: tick 0.5, lot 0.001. 0.05 BTC = 50 lots; notional 5000 USD; position 0.08 BTC = 80 lots.
    risk = {
        "limits": {"max_order_qty": "0.05", "max_order_notional": "5000", "max_position": "0.2"},
        "per_owner": {"mm-btc": {"max_position": "0.08"}},
        "rules": {"order_storm": None, "stale_market_data": None},
    }
    desk, _ = make_desk(tmp_path, risk=risk)
    rejected = _rejections(desk)
    router = desk.router
    # 51 lots > 50
    assert not await router.submit(order(qty=51, price=2_000, client_id="q"))
    assert rejected[-1].reason == "order quantity 51 lots exceeds max_order_qty 50 lots"
    # notional: 5000 USD = 10_000_000 tick-lots. 50 lots at 200_001 ticks = 10_000_050 > limit
    assert not await router.submit(order(qty=50, price=200_001, client_id="n"))
    assert rejected[-1].reason == "order notional 10000050 tick-lots exceeds max_order_notional 10000000"
    assert await router.submit(order(qty=50, price=200_000, client_id="n-ok"))
    # position: 50 resting + 30 = 80 ok; then +1 breaches the owner's 80
    assert await router.submit(order(qty=30, price=100_000, client_id="p1"))
    assert not await router.submit(order(qty=1, price=100_000, client_id="p2"))
    assert rejected[-1].reason == (
        "position limit: +81 lots (position +0, open 80 on this side) would exceed max_position 80 lots"
    )
    # another owner gets the desk-wide 200 lots
    assert await router.submit(order(qty=50, price=100_000, owner="grid", client_id="g1"))
    # market order with no reference price cannot be notional-checked
    assert not await router.submit(order(qty=1, price=None, type=OrderType.MARKET, client_id="m"))
    assert rejected[-1].reason == "market order with no reference price: notional limit cannot be checked"


async def test_rate_throttle_is_a_token_bucket_on_the_injected_clock(tmp_path):
    clock = ManualClock()
    risk = {"limits": {"max_orders_per_second": 4}, "rules": {"order_storm": None, "stale_market_data": None}}
    desk, _ = make_desk(tmp_path, risk=risk, clock=clock)
    gate = desk.router.gate
    results = [gate.check(order(client_id=f"o{i}")) for i in range(5)]
    assert results[:4] == [None] * 4
    assert results[4] == "order rate limit 4/s exceeded for mm-btc"
    assert gate.check(order(owner="other", client_id="x")) is None  # per owner
    clock.advance(0.25)  # one token back
    assert gate.check(order(client_id="o5")) is None
    assert gate.check(order(client_id="o6")) is not None
    clock.advance(10)  # refills to the 1 s burst, not more
    assert [gate.check(order(client_id=f"p{i}")) for i in range(5)].count(None) == 4
