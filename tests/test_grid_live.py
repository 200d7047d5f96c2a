"""The live grid bot on the real matching engine (and the real risk engine / kill switch)."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import PriceTick
from engines.grid.events import GridBotStatus, GridMarketState, GridRoundTrip
from engines.orders import OrderRequest, OrderType, Side, TimeInForce
from engines.risk.events import TradingState
from engines.runtime import Desk

SYM = "ETH-USD"
# ETH-USD: tick 0.05, lot 0.01 → 3050.00 = 61000 ticks, 0.5 = 50 lots
T = {3000: 60000, 3025: 60500, 3050: 61000, 3075: 61500, 3100: 62000}


def maker_fee(price: int, lots: int, bps: float = 1.0) -> float:
    # the matching engine's fee: notional in binary floating point x bps / 10,000, rounded to 1e-8
    return round(price * 0.05 * lots * 0.01 * bps / 10_000, 8)


def make_desk(tmp_path, **grid) -> Desk:
    cfg = DeskConfig.model_validate({
        "desk": {"name": "t", "data_dir": str(tmp_path)},
        "instruments": {SYM: {"tick_size": "0.05", "lot_size": "0.01", "ref_price": 3060}},
        "sim": {"enabled": False},
        "matching": {"maker_fee_bps": "1.0", "taker_fee_bps": "2.5", "journal": False},
        "risk": {"rules": {"stale_market_data": None}},
        "grid": [{"name": "g", "symbol": SYM, "lower": "3000", "upper": "3100", "levels": 5, "order_qty": "0.5",
                  **grid}],
    })
    desk = Desk(cfg, clock=ManualClock(), data_dir=tmp_path)
    desk.build(["engines.matching.service:build", "engines.risk.service:build", "engines.grid.service:build"])
    return desk


class Live:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.eng = desk.services["matching"]
        self.bot = desk.services["bots"]["g"]
        self.trips: list[GridRoundTrip] = []
        self.status: list[GridBotStatus] = []
        self.market: list[GridMarketState] = []
        desk.bus.subscribe(GridRoundTrip, self.trips.append)
        desk.bus.subscribe(GridBotStatus, self.status.append)
        desk.bus.subscribe(GridMarketState, self.market.append)
        self.n = 0

    def book(self, owner: str = "g") -> list[tuple[str, int, int]]:
        return sorted((o.side.value, o.price, o.qty) for o in self.eng.open_orders(owner=owner, symbol=SYM))

    async def price(self, px: float) -> None:
        self.desk.bus.publish(PriceTick(symbol=SYM, price=px))
        await self.bot.idle()

    async def take(self, side: Side, lots: int, price: int | None) -> None:
        self.n += 1
        kind = OrderType.LIMIT if price is not None else OrderType.MARKET
        self.eng.submit(OrderRequest(symbol=SYM, side=side, qty=lots, price=price, type=kind, tif=TimeInForce.IOC,
                                     owner="taker", client_id=f"t{self.n}"))
        await self.bot.idle()


@pytest.fixture
async def live(tmp_path, request):
    grid = getattr(request, "param", {})
    desk = make_desk(tmp_path, **grid)
    lv = Live(desk)
    await desk.start()
    yield lv
    await desk.stop()


async def test_lays_buys_below_sells_above_and_flips_with_exact_round_trip_profit(live):
    await live.price(3060.0)
    # cells: 3000, 3025, 3050 are below 3060 → buys there; cell 3 (3075→3100) → sell at 3100; 3075 empty
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 50), ("sell", T[3100], 50)]
    # a taker sells through 3050: the bot's buy fills and its sell goes one level up, at 3075
    await live.take(Side.SELL, 50, T[3050])
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("sell", T[3075], 50), ("sell", T[3100], 50)]
    assert live.bot.status()["inventory"] == 0.5
    # a taker buys at 3075: the sell fills → one round trip, buy back at 3050
    await live.take(Side.BUY, 50, T[3075])
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 50), ("sell", T[3100], 50)]
    (rt,) = live.trips
    assert (rt.cell, rt.buy_price, rt.sell_price, rt.qty) == (2, T[3050], T[3075], 50)
    assert rt.gross == D("12.5")  # 0.5 x (3075 - 3050), exact
    fees = maker_fee(T[3050], 50) + maker_fee(T[3075], 50)
    assert rt.fees == fees == 0.30625
    assert rt.profit == 12.5 - fees == 12.19375
    st = live.bot.status()
    assert (st["round_trips"], st["grid_profit"], st["fees"], st["inventory"]) == (1, 12.19375, 0.30625, 0.0)
    # a second round trip on the same cell earns exactly the same
    await live.take(Side.SELL, 50, T[3050])
    await live.take(Side.BUY, 50, T[3075])
    assert [t.profit for t in live.trips] == [12.19375, 12.19375]
    last = live.status[-1]
    assert last.levels == ((3000.0, "buy"), (3025.0, "buy"), (3050.0, "buy"), (3075.0, "empty"), (3100.0, "sell"))
    assert last.round_trips == 2 and last.grid_profit == pytest.approx(24.3875) and last.state == "running"
    assert last.last_fill == "sell 0.5 @ 3075.00"


async def test_gap_down_fills_several_levels_and_unrealised(live):
    await live.price(3060.0)
    # one taker sweeps the bids down to 3000: three buys fill, each puts its sell one level up
    await live.take(Side.SELL, 150, T[3000])
    assert live.book() == [("sell", T[3025], 50), ("sell", T[3050], 50), ("sell", T[3075], 50), ("sell", T[3100], 50)]
    await live.price(3010.0)
    st = live.bot.status()
    assert st["inventory"] == 1.5
    # average cost (3050 + 3025 + 3000) / 3 = 3025; marked at 3010
    assert st["unrealised"] == pytest.approx(1.5 * (3010 - 3025))
    assert live.trips == []


async def test_pause_cancels_and_resume_restores(live):
    await live.price(3060.0)
    before = live.book()
    live.bot.pause()
    await live.bot.idle()
    assert live.book() == [] and live.bot.status()["state"] == "paused"
    live.bot.resume()
    await live.bot.idle()
    assert live.book() == before and live.bot.status()["state"] == "running"


async def test_an_order_cancelled_part_filled_is_re_placed_for_the_remainder(live):
    await live.price(3060.0)
    await live.take(Side.SELL, 20, T[3050])  # 0.2 of the 0.5 buy at 3050 fills
    live.bot.pause()
    await live.bot.idle()
    assert live.book() == [] and live.bot.status()["inventory"] == 0.2
    live.bot.resume()
    await live.bot.idle()
    # the cell keeps its 0.2: only the remaining 0.3 is bid again at 3050; nothing is sold yet
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 30), ("sell", T[3100], 50)]
    await live.take(Side.SELL, 30, T[3050])  # the rest fills: the cell flips with its full 0.5
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("sell", T[3075], 50), ("sell", T[3100], 50)]
    await live.take(Side.BUY, 50, T[3075])
    (rt,) = live.trips
    assert (rt.cell, rt.buy_price, rt.sell_price, rt.qty, rt.gross) == (2, T[3050], T[3075], 50, D("12.5"))
    fees = maker_fee(T[3050], 20) + maker_fee(T[3050], 30) + maker_fee(T[3075], 50)
    assert rt.fees == pytest.approx(fees) and rt.profit == pytest.approx(12.5 - fees)
    assert live.bot.status()["inventory"] == 0.0


async def test_kill_switch_halts_the_bot_and_rearm_restores(live):
    await live.price(3060.0)
    ks = live.desk.services["killswitch"]
    await ks.kill("bot:g", reason="test", source="test")
    await live.bot.idle()
    assert live.book() == []
    assert live.desk.services["risk"].effective_state("g", SYM) == TradingState.HALTED
    assert live.bot.status()["state"] == "halted"
    await live.price(3061.0)  # a price update does not bring orders back while halted
    assert live.book() == []
    await ks.rearm("bot:g", reason="test", source="test")
    await live.bot.idle()
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 50), ("sell", T[3100], 50)]


async def test_recover_orders_from_the_venue_on_start(tmp_path):
    desk = make_desk(tmp_path, on_start="recover")
    eng = desk.services["matching"]
    await eng.start()  # rest orders as a previous run of the bot left them, before the bot starts
    for cid, side, px in (("old-1", Side.SELL, T[3075]), ("old-2", Side.BUY, T[3025]), ("old-3", Side.BUY, 60660)):
        eng.submit(OrderRequest(symbol=SYM, side=side, qty=50, price=px, owner="g", client_id=cid))
    lv = Live(desk)
    await desk.start()
    await lv.price(3060.0)
    # adopted: sell at 3075 (cell 2 holds base), buy at 3025; the off-grid 3033 buy is cancelled;
    # missing: buy 3000 (cell 0), sell 3100 (cell 3)
    assert lv.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("sell", T[3075], 50), ("sell", T[3100], 50)]
    assert {o.client_id for o in eng.open_orders(owner="g")} >= {"old-1", "old-2"}
    await desk.stop()
    assert lv.book() == []  # on_stop = cancel


@pytest.mark.parametrize("live", [{"stop_loss": "2990", "on_stop": "keep"}], indirect=True)
async def test_stop_loss_cancels_and_liquidates(live):
    await live.price(3060.0)
    await live.take(Side.SELL, 100, T[3025])  # two buys fill: long 1.0
    live.eng.submit(OrderRequest(symbol=SYM, side=Side.BUY, qty=500, price=T[3000] - 400, owner="taker",
                                 client_id="bid"))  # liquidity for the bot's market sell (2980)
    await live.price(2985.0)
    assert live.bot.status()["state"] == "stopped_out"
    assert live.book() == []
    assert live.bot.status()["inventory"] == 0.0
    assert live.status[-1].reason.startswith("stop-loss at 2985")


@pytest.mark.parametrize("live", [{"trend_action": "pause_buys", "market_window": 8, "er_threshold": 0.6}],
                         indirect=True)
async def test_trending_market_pauses_new_buys(live):
    await live.price(3060.0)
    for px in (3061, 3062, 3063, 3064, 3065, 3066, 3067, 3068):
        await live.price(float(px))
    assert live.market[-1].regime == "trending" and live.market[-1].action == "pause_buys"
    # the sell at 3100 fills: its cell wants a buy at 3075, which waits while the market trends
    await live.take(Side.BUY, 50, T[3100])
    assert live.book() == [("buy", T[3000], 50), ("buy", T[3025], 50), ("buy", T[3050], 50)]
    for px in (3067, 3068, 3067, 3068, 3067, 3068, 3067, 3068):
        await live.price(float(px))
    assert live.market[-1].regime == "ranging"
    assert ("buy", T[3075], 50) in live.book()


async def test_strategy_file_is_loaded(tmp_path):
    strat = {"kind": "explicit", "lower": "3000", "upper": "3090", "levels": 3, "prices": ["3000", "3040", "3090"],
             "order_qty": "0.2", "symbol": SYM}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(strat))
    desk = make_desk(tmp_path, strategy=str(path))
    bot = desk.services["bots"]["g"]
    assert bot.level_ticks == [60000, 60800, 61800] and bot.cell_lots == [20, 20]


@pytest.mark.parametrize("live", [{"kind": "volatility", "vol_window": 4, "vol_multiplier": "10"}], indirect=True)
async def test_volatility_grid_measures_its_gap_from_the_reference_prices(live):
    import itertools
    import math
    import statistics

    from engines.grid.levels import volatility

    prices = [3060.0, 3061.0, 3059.0, 3062.0, 3060.0]
    for i, px in enumerate(prices[:-1]):
        await live.price(px)
        assert live.book() == [] and live.bot.status()["reason"] == f"measuring volatility: {i + 1}/5 prices"
    await live.price(prices[-1])
    sigma = statistics.stdev(math.log(b / a) for a, b in itertools.pairwise(prices))
    step = D("10") * D(repr(sigma)) * D("3060.0")
    assert D("24") < step < D("25")
    levels = volatility(D("3000"), D("3100"), 5, D("0.05"), center=D("3060.0"), step=step)
    ticks = [int(lv / D("0.05")) for lv in levels]
    assert [str(lv) for lv in levels] == ["3002.05", "3026.55", "3051.00", "3075.50", "3100.00"]  # kept under upper
    assert live.bot.level_ticks == ticks
    # laid around 3060 like any grid: buys at the levels below, a sell above the price
    below = [t for t in ticks[:-1] if t < 61200]
    assert live.book() == sorted([("buy", t, 50) for t in below] +
                                 [("sell", t, 50) for t in ticks[len(below) + 1:]])
    assert live.bot.status()["state"] == "running"


def test_config_errors_name_the_problem(tmp_path):
    from pydantic import ValidationError

    from engines.grid.config import GridBotConfig

    with pytest.raises(ValidationError, match="lower 3100 must be below upper 3000"):
        GridBotConfig(name="g", symbol=SYM, lower=D("3100"), upper=D("3000"))
    with pytest.raises(ValidationError, match=r"needs vol_step .* or vol_window >= 3"):
        GridBotConfig(name="g", symbol=SYM, lower=D("3000"), upper=D("3100"), kind="volatility")
    with pytest.raises(ValidationError, match="give lower and upper"):
        GridBotConfig(name="g", symbol=SYM)
    ok = GridBotConfig(name="g", symbol=SYM, lower=D("3000"), upper=D("3100"), kind="volatility", vol_step=D("10"))
    assert ok.on_start == "cancel" and ok.trend_action == "pause_buys"


async def test_reducing_state_allows_only_inventory_reducing_orders(live):
    await live.price(3060.0)
    await live.take(Side.SELL, 50, T[3050])  # long 0.5; sell at 3075 placed
    ks = live.desk.services["killswitch"]
    await ks.kill("bot:g", reason="test", source="test")
    await live.bot.idle()
    assert live.book() == []
    await ks.rearm("bot:g", reason="test", source="test", state=TradingState.REDUCING)
    await live.bot.idle()
    # long 0.5: only sells, nearest first, up to the position - the sell at 3075; no buys
    assert live.book() == [("sell", T[3075], 50)]
    assert live.bot.status()["reason"] == "reducing only" and live.bot.status()["last_reject"] == ""
    await live.take(Side.BUY, 50, T[3075])  # flat again: nothing may rest
    assert live.book() == [] and live.bot.status()["inventory"] == 0.0


@pytest.mark.parametrize("live", [{"trend_action": "widen", "widen_levels": 1}], indirect=True)
async def test_widen_defers_only_the_buys_next_to_the_price(live):
    from engines.grid.market_state import MarketReading

    await live.price(3060.0)
    bot = live.bot
    bot.reading = MarketReading("trending", 0.9, 60.0, 0.8, "down")
    want = bot._wanted(TradingState.ACTIVE)
    # price 3060: levels below are 3000, 3025, 3050 (3 of them); with widen_levels=1 the buys of cells
    # 2 (3050) and up wait, cells 0 and 1 still buy; sells are unaffected
    assert want == {0: (Side.BUY, 0), 1: (Side.BUY, 1), 4: (Side.SELL, 3)}
    bot.reading = MarketReading("ranging", 0.1, 10.0, 0.2, "flat")
    assert bot._wanted(TradingState.ACTIVE) == {0: (Side.BUY, 0), 1: (Side.BUY, 1), 2: (Side.BUY, 2),
                                                4: (Side.SELL, 3)}


async def test_keep_on_start_leaves_venue_orders_alone(tmp_path):
    desk = make_desk(tmp_path, on_start="keep", on_stop="keep")
    eng = desk.services["matching"]
    await eng.start()
    eng.submit(OrderRequest(symbol=SYM, side=Side.BUY, qty=10, price=T[3025], owner="g", client_id="old"))
    lv = Live(desk)
    await desk.start()
    await lv.price(3060.0)
    assert lv.book() == [("buy", T[3000], 50), ("buy", T[3025], 10), ("buy", T[3025], 50), ("buy", T[3050], 50),
                         ("sell", T[3100], 50)]
    assert lv.bot.status()["open_orders"] == 4  # the old order is not the grid's
    await desk.stop()
    assert len(lv.book()) == 5  # on_stop = keep
