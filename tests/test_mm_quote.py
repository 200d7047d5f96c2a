"""Quote engine: exact prices and sizes for given reference, inventory and configuration."""

from __future__ import annotations

from decimal import Decimal

from engines.instruments import Instrument
from engines.mm.config import MMBotConfig, MMLimits
from engines.mm.quote import QuoteLevel, QuoteParams, compute_quotes, effective_spread_bps, needs_refresh
from engines.orders import Side

BTC = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")


def params(**kw) -> QuoteParams:
    cfg = MMBotConfig(name="mm", symbol="BTC-USD", **kw)
    return QuoteParams.from_config(cfg, BTC)


def prices(levels):
    return [(q.level, str(BTC.price(q.price)), q.qty) for q in levels]


def test_three_levels_with_step_and_size_increment():
    p = params(spread_bps="8", levels=3, level_step_bps="5", order_qty="0.05", qty_increment="0.01")
    qs = compute_quotes(65000.0, 0, p, BTC)
    assert prices(qs.bids) == [(0, "64974.0", 50), (1, "64941.5", 60), (2, "64909.0", 70)]
    assert prices(qs.asks) == [(0, "65026.0", 50), (1, "65058.5", 60), (2, "65091.0", 70)]
    assert qs.centre == Decimal("65000.0") and qs.skew_bps == 0


def test_rounding_bids_down_asks_up():
    qs = compute_quotes(65001.3, 0, params(spread_bps="8", order_qty="0.05"), BTC)
    # exact: bid 64975.29948, ask 65027.30052
    assert qs.bids == (QuoteLevel(Side.BUY, 0, 129950, 50),)
    assert qs.asks == (QuoteLevel(Side.SELL, 0, 130055, 50),)


def test_inventory_skew_moves_the_centre_toward_target():
    p = params(spread_bps="8", order_qty="0.05", skew_bps_per_unit="10")
    long = compute_quotes(65000.0, 200, p, BTC)  # 0.2 BTC long → 2 bps lower
    assert long.skew_bps == Decimal("2.000")
    assert long.centre == Decimal("64987.0")
    assert (long.bids[0].price, long.asks[0].price) == (129922, 130026)  # 64961.0 / 65013.0
    short = compute_quotes(65000.0, -200, p, BTC)
    assert short.skew_bps == Decimal("-2.000")
    assert (BTC.price(short.bids[0].price), BTC.price(short.asks[0].price)) == (Decimal("64986.5"), Decimal("65039.5"))  # 64986.9948 / 65039.0052


def test_skew_is_clamped_and_target_inventory_respected():
    p = params(spread_bps="8", order_qty="0.05", skew_bps_per_unit="10", max_skew_bps="50")
    qs = compute_quotes(65000.0, 10_000, p, BTC)  # 10 BTC → 100 bps raw, clamped to 50
    assert qs.skew_bps == Decimal(50)
    assert (qs.bids[0].price, qs.asks[0].price) == (129298, 129402)
    at_target = compute_quotes(65000.0, 500, params(spread_bps="8", skew_bps_per_unit="10", target_inventory="0.5"), BTC)
    assert at_target.skew_bps == 0


def test_min_and_max_spread_bounds():
    assert effective_spread_bps(params(spread_bps="2", min_spread_bps="6")) == Decimal(6)
    assert effective_spread_bps(params(spread_bps="900", max_spread_bps="500")) == Decimal(500)
    qs = compute_quotes(65000.0, 0, params(spread_bps="2", min_spread_bps="6", order_qty="0.05"), BTC)
    assert (str(BTC.price(qs.bids[0].price)), str(BTC.price(qs.asks[0].price))) == ("64980.5", "65019.5")


def test_sizes_trimmed_to_the_position_limit():
    p = params(spread_bps="8", levels=3, order_qty="0.05", qty_increment="0.01",
               limits=MMLimits(max_position=Decimal("0.1")))
    qs = compute_quotes(65000.0, 80, p, BTC)  # 0.08 long, limit 0.1: 0.02 left to buy, 0.18 to sell
    assert [q.qty for q in qs.bids] == [20]
    assert [q.qty for q in qs.asks] == [50, 60, 70]
    at_limit = compute_quotes(65000.0, 100, p, BTC)
    assert at_limit.bids == ()


def test_own_ask_never_touches_own_bid():
    inst = Instrument("X", Decimal(1), Decimal(1))
    qs = compute_quotes(100.0, 0, QuoteParams(spread_bps=Decimal(0)), inst)
    assert (qs.bids[0].price, qs.asks[0].price) == (100, 101)


def test_refresh_only_beyond_tolerance_or_max_age():
    target = QuoteLevel(Side.BUY, 0, 129950, 50)
    kw = {"tolerance_bps": Decimal(2), "max_age": 30.0}
    assert not needs_refresh(129948, 50, target, age=1.0, **kw)  # 0.15 bps
    assert needs_refresh(129948, 50, target, age=30.0, **kw)  # too old
    assert needs_refresh(129990, 50, target, age=1.0, **kw)  # 3.08 bps
    assert needs_refresh(129950, 40, target, age=1.0, **kw)  # size changed
