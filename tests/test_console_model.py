"""The console's desk model (no Textual): dirty flags, conflation, bounded histories, order lifecycle,
own-order levels; and the theme files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from console.model import DeskModel
from console.themes import ThemeFileError, load_theme, load_themes
from engines.bus import Bus
from engines.clock import ManualClock
from engines.events import LogRecordEvent, PriceTick
from engines.instruments import Instrument
from engines.marketdata import BBO, Trade
from engines.orders import Fill, Liquidity, OrderAccepted, OrderCanceled, OrderType, Side, TimeInForce
from engines.risk.events import TradingState, TradingStateChanged

BTC = Instrument("BTC-USD", Decimal("0.5"), Decimal("0.001"), 1, "BTC", "USD")


def model_on_bus(**kw: object) -> tuple[DeskModel, Bus]:
    bus = Bus(ManualClock())
    model = DeskModel({"BTC-USD": BTC}, own_owners=["mm-btc"], **kw)  # type: ignore[arg-type]
    model.attach(bus)
    model.dirty.clear()
    return model, bus


def accepted(oid: int, owner: str, side: Side, price: int, qty: int) -> OrderAccepted:
    return OrderAccepted(symbol="BTC-USD", order_id=oid, client_id=f"c{oid}", owner=owner, side=side,
                         type=OrderType.LIMIT, tif=TimeInForce.GTC, price=price, qty=qty)


def test_market_data_is_conflated_and_marks_only_its_panels() -> None:
    model, bus = model_on_bus()
    for px in (100, 101, 102):
        bus.publish(BBO(symbol="BTC-USD", bid_px=px, bid_qty=1, ask_px=px + 2, ask_qty=1))
    assert model.bbo["BTC-USD"].bid_px == 102
    assert model.dirty == {"book"}
    assert model.take_dirty("book") and not model.take_dirty("book")
    bus.publish(PriceTick(symbol="BTC-USD", price=65000.25))
    assert model.prices == {"BTC-USD": 65000.25}
    assert model.dirty == {"book", "grid"}
    assert model.events == 4


def test_histories_are_bounded() -> None:
    model, bus = model_on_bus(log_size=5, trade_size=3)
    for i in range(10):
        bus.publish(LogRecordEvent(level="WARNING", source="x", message=f"m{i}"))
        bus.publish(Trade(symbol="BTC-USD", trade_id=i, price=100 + i, qty=1, aggressor=Side.BUY, maker_order_id=1,
                          taker_order_id=2, maker_owner="a", taker_owner="b", maker_fee=0.0, taker_fee=0.0))
    assert [e.text for e in model.log] == ["m5", "m6", "m7", "m8", "m9"]
    assert [t.trade_id for t in model.trades["BTC-USD"]] == [7, 8, 9]


def test_order_lifecycle_and_own_levels() -> None:
    model, bus = model_on_bus()
    bus.publish(accepted(1, "mm-btc", Side.BUY, 130000, 50))
    bus.publish(accepted(2, "lp", Side.BUY, 130000, 10))
    bus.publish(accepted(3, "operator", Side.SELL, 130010, 20))
    assert model.open_count() == 3 and model.open_count(owner="mm-btc") == 1
    assert model.own_levels("BTC-USD") == {("buy", 130000): ["mm-btc"], ("sell", 130010): ["operator"]}
    bus.publish(Fill(symbol="BTC-USD", order_id=1, client_id="c1", owner="mm-btc", side=Side.BUY, price=130000,
                     qty=20, leaves_qty=30, liquidity=Liquidity.MAKER, fee=0.13, trade_id=1))
    bus.publish(OrderCanceled(symbol="BTC-USD", order_id=1, client_id="c1", owner="mm-btc", side=Side.BUY,
                              price=130000, canceled_qty=30, filled_qty=20, reason="kill"))
    order = model.order("BTC-USD", 1)
    assert order is not None and order.status == "canceled" and order.filled == 20 and order.leaves == 0
    assert [text for _, text in order.lifecycle] == [
        "accepted buy 0.05 @ 65000.0",
        "fill 0.02 @ 65000.0 maker fee 0.1300",
        "canceled 0.03 (kill)",
    ]
    assert model.open_count() == 2
    assert ("buy", 130000) not in model.own_levels("BTC-USD")


def test_trading_state_is_urgent_and_logged() -> None:
    model, bus = model_on_bus()
    heard: list[str] = []
    model.urgent.append(lambda ev: heard.append(type(ev).__name__))
    bus.publish(TradingStateChanged(scope="desk", state=TradingState.HALTED, previous=TradingState.ACTIVE,
                                    reason="panic", source="console"))
    assert heard == ["TradingStateChanged"]
    assert model.desk_state() == "halted" and model.halted_scopes() == ["desk"]
    assert model.log[-1].level == "error" and "HALTED (panic)" in model.log[-1].text
    assert {"status", "bots", "grid", "book", "log"} <= model.dirty


def test_unknown_json_event_is_ignored() -> None:
    model = DeskModel({"BTC-USD": BTC})
    model.apply_json('{"event": "NoSuchEvent", "seq": 1, "ts": 1}')
    model.apply_json({"event": "PriceTick", "seq": 2, "ts": 5, "symbol": "BTC-USD", "price": 1.5, "source": "sim"})
    assert model.prices == {"BTC-USD": 1.5} and model.last_ts == 5 and model.events == 1


def test_theme_files() -> None:
    themes = load_themes()
    assert {"opdesk-dark", "opdesk-light", "opdesk-high-contrast"} <= set(themes)
    for theme in themes.values():
        assert {"bid", "ask", "pnl-up", "pnl-down", "halted"} <= set(theme.variables)
    assert themes["opdesk-light"].dark is False


def test_bad_theme_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\ncolour = "red"\n')
    with pytest.raises(ThemeFileError, match=r"broken\.toml: primary: missing"):
        load_theme(bad)


def test_pnl_sparkline_points_are_the_net_pnl_the_bots_table_shows() -> None:
    from engines.mm.events import MMBotStatus

    clock = ManualClock()
    bus = Bus(clock)
    model = DeskModel({"BTC-USD": BTC}, own_owners=["mm-btc"])
    model.attach(bus)

    def status(realised: float, unrealised: float, fees: float) -> MMBotStatus:
        return MMBotStatus(bot="mm-btc", symbol="BTC-USD", venue="sim", state="quoting", quoting=True,
                           realised=realised, unrealised=unrealised, fees=fees,
                           net_pnl=realised + unrealised - fees)

    bus.publish(status(120.0, -20.0, 7.5))
    clock.advance(0.6)  # a new point per half second of desk time; faster updates replace the last one
    bus.publish(status(150.0, 10.0, 9.0))
    bus.publish(status(150.0, 12.0, 9.25))
    assert list(model.pnl["mm-btc"]) == [92.5, 152.75]
