"""A deterministic, seeded desk for snapshot tests, screenshots and the console bench.

Nothing here runs on a timer: the clock is a :class:`ManualClock`, simulated prices are stepped by
hand, orders go straight to the matching engine (when the desk has one), and the engines that need a
running loop or sockets to produce their status (bots, FIX sessions) are represented by the status
events they publish, with fixed figures. The same calls always produce the same screen.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from engines.clock import ManualClock
from engines.config import DeskConfig
from engines.events import EngineState, EngineStatusChanged
from engines.orders import OrderRequest, Side
from engines.runtime import Desk

#: Engines the seeded desk builds (those whose module exists on this checkout).
SEED_BUILDERS = [
    "engines.sim.prices:build",
    "engines.matching.service:build",
    "engines.risk.service:build",
]

SESSION = "FIX.4.4:DESKCLIENT->OPDESK"
SESSION_ACC = "FIX.4.4:OPDESK->DESKCLIENT"


def available_builders(builders: list[str] = SEED_BUILDERS) -> list[str]:
    out = []
    for spec in builders:
        try:
            importlib.import_module(spec.split(":")[0])
        except ImportError:
            continue
        out.append(spec)
    return out


#: The seeded desk's own instruments and bots, so its screens do not move when the demo config does.
INSTRUMENTS = {
    "BTC-USD": {"tick_size": "0.5", "lot_size": "0.001", "base": "BTC", "quote": "USD", "ref_price": 65000.0,
                "volatility": 0.02},
    "ETH-USD": {"tick_size": "0.05", "lot_size": "0.01", "base": "ETH", "quote": "USD", "ref_price": 3200.0,
                "volatility": 0.03},
}
MM = [{"name": "mm-btc", "symbol": "BTC-USD", "spread_bps": "8", "levels": 3, "order_qty": "0.05"}]
GRID = [{"name": "grid-eth", "symbol": "ETH-USD", "lower": "3000", "upper": "3400", "levels": 17,
         "kind": "arithmetic", "order_qty": "0.5"}]


def seeded_config(data_dir: Path, **ui: Any) -> DeskConfig:
    return DeskConfig(
        desk={"name": "demo", "data_dir": str(data_dir)},
        instruments=INSTRUMENTS,
        sim={"enabled": True, "seed": 7, "tick_hz": 4.0},
        # The pure-Python book: the same screen whether or not this checkout has a current compiled build
        # (the ladder's header names the book the matching engine runs).
        matching={"compiled_book": "off"},
        mm=MM,
        grid=GRID,
        ui={"refresh_hz": 15.0, "theme": "opdesk-dark", "keymap": {}, "confirm_panic_kill": True, **ui},
    )


def seeded_desk(config: DeskConfig, builders: list[str] | None = None) -> Desk:
    clock = ManualClock()
    return Desk(config, clock=clock, data_dir=Path(config.desk.data_dir) / config.desk.name).build(
        available_builders(builders or SEED_BUILDERS)
    )


def _event(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def seed(desk: Desk, *, steps: int = 12) -> None:
    """Drive the desk into a busy, realistic state: prices, a two-sided book with own orders, trades,
    bot and grid status, FIX sessions and messages."""
    clock: ManualClock = desk.clock  # type: ignore[assignment]
    bus = desk.bus
    for name in [e.name for e in desk.engines] + ["mm-btc", "grid-eth", "fix"]:
        bus.publish(EngineStatusChanged(engine=name, state=EngineState.RUNNING))
    prices = desk.services.get("sim-prices")
    for _ in range(steps):
        if prices is not None:
            prices.step()
        clock.advance(0.25)
    _book(desk)
    _bots(desk)
    _fix(desk)


def _ref(desk: Desk, symbol: str) -> float:
    prices = desk.services.get("sim-prices")
    if prices is not None:
        return prices.prices[symbol]
    return float(desk.config.instruments[symbol].ref_price)


def _book(desk: Desk) -> None:
    matching = desk.services.get("matching")
    clock: ManualClock = desk.clock  # type: ignore[assignment]
    for symbol, inst in desk.instruments.items():
        mid = inst.ticks_near(_ref(desk, symbol))
        step = 2 if symbol.startswith("BTC") else 4
        orders: list[OrderRequest] = []
        for level in range(12):
            size = inst.min_qty_lots * (20 + 13 * ((level * 7) % 5) + 5 * level)
            for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                px = mid + sign * (1 + level * step)
                owner = "lp-1" if level % 3 else "lp-2"
                orders.append(OrderRequest(symbol=symbol, side=side, qty=size, price=px, owner=owner,
                                           client_id=f"{owner}-{symbol}-{side}-{level}"))
        bot = "mm-btc" if symbol.startswith("BTC") else "grid-eth"
        for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
            orders.append(OrderRequest(symbol=symbol, side=side, qty=50, price=mid + sign * (1 + step),
                                       owner=bot, client_id=f"{bot}-{side}-1"))
        orders.append(OrderRequest(symbol=symbol, side=Side.BUY, qty=30, price=mid - (1 + 4 * step),
                                   owner="operator", client_id=f"op-{symbol}-1"))
        # takers crossing the spread: trades
        takers = [
            OrderRequest(symbol=symbol, side=Side.BUY, qty=15, price=mid + 1 + step, owner="taker",
                         client_id=f"t-{symbol}-1"),
            OrderRequest(symbol=symbol, side=Side.SELL, qty=25, price=mid - 1 - step, owner="taker",
                         client_id=f"t-{symbol}-2"),
            OrderRequest(symbol=symbol, side=Side.BUY, qty=10, price=mid + 1, owner="taker",
                         client_id=f"t-{symbol}-3"),
        ]
        if matching is not None:
            for req in orders:
                matching.submit(req)
                clock.advance(0.001)
            for req in takers:
                clock.advance(0.35)
                matching.submit(req)
        else:
            _synthetic_book(desk, symbol, orders, takers)


def _synthetic_book(desk: Desk, symbol: str, orders: list[OrderRequest], takers: list[OrderRequest]) -> None:
    """Without a matching engine: publish the book events the matching engine would."""
    from engines.marketdata import BBO, Depth, Trade
    from engines.orders import OrderAccepted, OrderType, TimeInForce

    bus = desk.bus
    clock: ManualClock = desk.clock  # type: ignore[assignment]
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for i, req in enumerate(orders):
        assert req.price is not None
        book = bids if req.side is Side.BUY else asks
        book[req.price] = book.get(req.price, 0) + req.qty
        bus.publish(OrderAccepted(symbol=symbol, order_id=1000 + i, client_id=req.client_id, owner=req.owner,
                                  side=req.side, type=OrderType.LIMIT, tif=TimeInForce.GTC, price=req.price,
                                  qty=req.qty))
    for j, t in enumerate(takers):
        clock.advance(0.35)
        assert t.price is not None
        px = min(asks) if t.side is Side.BUY else max(bids)
        book = asks if t.side is Side.BUY else bids
        book[px] -= t.qty
        if book[px] <= 0:
            del book[px]
        bus.publish(Trade(symbol=symbol, trade_id=j + 1, price=px, qty=t.qty, aggressor=t.side, maker_order_id=1000,
                          taker_order_id=2000 + j, maker_owner="lp-1", taker_owner="taker", maker_fee=0.0,
                          taker_fee=0.0))
    b = tuple(sorted(bids.items(), reverse=True))
    a = tuple(sorted(asks.items()))
    bus.publish(Depth(symbol=symbol, bids=b, asks=a))
    bus.publish(BBO(symbol=symbol, bid_px=b[0][0], bid_qty=b[0][1], ask_px=a[0][0], ask_qty=a[0][1]))


def _bots(desk: Desk) -> None:
    bus = desk.bus
    clock: ManualClock = desk.clock  # type: ignore[assignment]
    MMBotStatus = _event("engines.mm.events", "MMBotStatus")
    if MMBotStatus is not None:
        ref = _ref(desk, "BTC-USD")
        for i, pnl in enumerate((0.0, 4.2, 9.8, 7.1, 12.6, 18.3, 15.0, 21.4, 26.9, 24.2, 31.5, 35.8)):
            clock.advance(0.6)
            bus.publish(MMBotStatus(
                bot="mm-btc", symbol="BTC-USD", venue="sim", state="quoting", quoting=True,
                reference=ref, position=0.15, avg_price=round(ref - 12.5, 1), realised=pnl * 0.7,
                unrealised=pnl * 0.3, fees=1.25 + i * 0.2, net_pnl=pnl, return_pct=pnl / 1000,
                inventory_value=0.15 * ref, bid=round(ref - 26, 1), ask=round(ref + 26, 1), open_orders=6,
                fills=3 + i, limits={"position": 0.3, "order_rate": 0.12, "loss": 0.0},
            ))
        bus.publish(MMBotStatus(
            bot="mm-eth", symbol="ETH-USD", venue="sim", state="paused", quoting=False, reason="paused by operator",
            reference=_ref(desk, "ETH-USD"), position=-1.2, avg_price=3204.5, realised=-14.2, unrealised=-3.1,
            fees=2.4, net_pnl=-17.3, return_pct=-0.0173, open_orders=0, limits={"position": 0.86},
        ))
    GridBotStatus = _event("engines.grid.events", "GridBotStatus")
    eth = _ref(desk, "ETH-USD")
    levels = tuple((3000.0 + 25 * i, "buy" if 3000.0 + 25 * i < eth else "sell") for i in range(17))
    levels = tuple((p, "empty") if abs(p - eth) < 25 and p > eth else (p, s) for p, s in levels)
    fields = dict(
        bot="grid-eth", symbol="ETH-USD", state="running", levels=levels, last_price=eth, round_trips=7,
        grid_profit=43.75, fees=3.1, inventory=1.5, unrealised=-2.35, market_state="ranging",
        last_fill="sell 0.5 @ 3,225.00",
    )
    if GridBotStatus is not None:
        import dataclasses

        names = {f.name for f in dataclasses.fields(GridBotStatus)}
        try:
            bus.publish(GridBotStatus(**{k: v for k, v in fields.items() if k in names}))
        except TypeError:
            pass


def _fix(desk: Desk) -> None:
    bus = desk.bus
    clock: ManualClock = desk.clock  # type: ignore[assignment]
    State = _event("engines.fix.events", "FixSessionState")
    Stats = _event("engines.fix.events", "FixSessionStats")
    Logged = _event("engines.fix.events", "FixMessageLogged")
    SessionState = _event("engines.fix.events", "SessionState")
    if State is None or SessionState is None:
        return
    for sess, role in ((SESSION, "initiator"), (SESSION_ACC, "acceptor")):
        for st in ("CONNECTING", "LOGON_IN_PROGRESS", "ACTIVE"):
            if role == "acceptor" and st == "CONNECTING":
                continue
            bus.publish(State(session=sess, state=SessionState(st), role=role))
    if Logged is not None:
        msgs = [
            ("out", "A", "8=FIX.4.4|9=75|35=A|34=1|49=DESKCLIENT|52=20260101-00:00:03.000|56=OPDESK|98=0|108=30|"
                         "553=desk|554=***|10=081|"),
            ("in", "A", "8=FIX.4.4|9=65|35=A|34=1|49=OPDESK|52=20260101-00:00:03.002|56=DESKCLIENT|98=0|108=30|"
                        "10=142|"),
            ("out", "D", "8=FIX.4.4|9=142|35=D|34=2|49=DESKCLIENT|52=20260101-00:00:04.000|56=OPDESK|11=cl-1|"
                         "55=BTC-USD|54=1|38=0.05|40=2|44=64990.0|59=1|60=20260101-00:00:04.000|10=201|"),
            ("in", "8", "8=FIX.4.4|9=190|35=8|34=2|49=OPDESK|52=20260101-00:00:04.001|56=DESKCLIENT|37=17|11=cl-1|"
                        "17=e-1|150=0|39=0|55=BTC-USD|54=1|38=0.05|44=64990.0|151=0.05|14=0|6=0|10=033|"),
            ("in", "8", "8=FIX.4.4|9=201|35=8|34=3|49=OPDESK|52=20260101-00:00:05.250|56=DESKCLIENT|37=17|11=cl-1|"
                        "17=e-2|150=F|39=2|55=BTC-USD|54=1|38=0.05|44=64990.0|31=64990.0|32=0.05|151=0|14=0.05|"
                        "6=64990.0|10=118|"),
            ("out", "0", "8=FIX.4.4|9=55|35=0|34=3|49=DESKCLIENT|52=20260101-00:00:33.000|56=OPDESK|10=007|"),
            ("in", "0", "8=FIX.4.4|9=55|35=0|34=4|49=OPDESK|52=20260101-00:00:33.001|56=DESKCLIENT|10=009|"),
        ]
        for direction, mt, raw in msgs:
            clock.advance(0.05)
            bus.publish(Logged(session=SESSION, direction=direction, raw=raw, msg_type=mt))
    if Stats is not None:
        bus.publish(Stats(session=SESSION, state=SessionState.ACTIVE, next_sender_seq=4, next_target_seq=5,
                          last_heartbeat_ts=clock.time_ns() - 2_000_000_000, msgs_in=4, msgs_out=3, rate_in=0.4,
                          rate_out=0.3, errors=0))
        bus.publish(Stats(session=SESSION_ACC, state=SessionState.ACTIVE, next_sender_seq=5, next_target_seq=4,
                          last_heartbeat_ts=clock.time_ns() - 2_000_000_000, msgs_in=3, msgs_out=4, rate_in=0.3,
                          rate_out=0.4, errors=1))


async def start_engines(desk: Desk, names: tuple[str, ...] = ("matching", "killswitch")) -> list[Any]:
    """Start only the named engines (those that need no timer to be deterministic); returns them."""
    started = []
    for engine in desk.engines:
        if engine.name in names:
            await engine.start()
            started.append(engine)
    return started


async def stop_engines(engines: list[Any]) -> None:
    for engine in reversed(engines):
        await engine.stop()
