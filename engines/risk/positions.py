"""Positions, P&L and open orders per owner and instrument, tracked from bus events.

* :class:`PositionBook` follows ``Fill`` events: average-cost position per (owner, symbol) in lots,
  realised P&L and fees in quote currency, unrealised P&L marked to the latest mark (the mid of a
  two-sided ``BBO`` or a ``PriceTick``, whichever came last). It keeps P&L per risk scope (desk,
  bot:OWNER, instrument:SYMBOL) for the day (UTC, from the desk clock) and the day's peak, for the
  daily-loss and drawdown limits.
* :class:`OrderTracker` follows the order lifecycle (accepted, filled, canceled, replaced) so the gate
  knows the open quantity per side and the rules know which instruments, owners and venues have open
  orders.

Both update synchronously inside the bus publish, so the gate sees a fill before the next order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engines.bus import Bus
from engines.clock import Clock
from engines.events import PriceTick
from engines.instruments import Instrument
from engines.marketdata import BBO
from engines.orders import Fill, OrderAccepted, OrderCanceled, OrderReplaced, Side
from engines.risk.events import DESK

_DAY_NS = 86_400_000_000_000
_BUY = Side.BUY  # a module constant: ``Side.BUY`` is a metaclass lookup, on every acknowledgement and fill


@dataclass(slots=True)
class Position:
    owner: str
    symbol: str
    qty: int = 0  # lots, signed (+ long)
    avg_px: float = 0.0  # ticks, average cost of the open position
    realised: float = 0.0  # quote currency, before fees
    fees: float = 0.0  # quote currency (negative = rebates)
    venue: str = ""  # where the last fill came from (flatten goes there)
    fills: int = 0


@dataclass(slots=True)
class ScopePnL:
    day: int = -1
    day_start: float = 0.0  # total P&L at the start of the day
    peak: float = 0.0  # highest day P&L seen today
    day_pnl: float = 0.0

    @property
    def drawdown(self) -> float:
        return self.peak - self.day_pnl


@dataclass(slots=True)
class _Open:
    owner: str
    symbol: str
    side: Side
    leaves: int
    client_id: str
    venue: str
    sides: list[int]  # the [buy, sell] open-quantity cell of (owner, symbol), shared with the tracker
    idx: int  # 0 buy, 1 sell


@dataclass(slots=True)
class OrderTracker:
    """Open orders per venue and order id, with the open quantity per (owner, symbol, side).

    On the path of every cancel of a 10,000-order kill: each handler is a handful of dict operations.
    """

    orders: dict[tuple[str, int], _Open] = field(default_factory=dict)
    open_qty: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # [buy, sell] lots
    per_symbol: dict[str, int] = field(default_factory=dict)  # open order count
    # Owners whose orders mirror orders already tracked under their real owner (the desk's own loopback
    # FIX client: RiskGate.trust_upstream): not tracked, so each order counts once.
    ignored: set[str] = field(default_factory=set)

    def attach(self, bus: Bus) -> None:
        bus.subscribe(OrderAccepted, self.on_accepted)
        bus.subscribe(Fill, self.on_fill)
        bus.subscribe(OrderCanceled, self.on_canceled)
        bus.subscribe(OrderReplaced, self.on_replaced)

    def on_accepted(self, ev: OrderAccepted) -> None:
        key = (ev.venue, ev.order_id)
        if key in self.orders or ev.owner in self.ignored:
            return
        sides = self.open_qty.get((ev.owner, ev.symbol))
        if sides is None:
            sides = self.open_qty[(ev.owner, ev.symbol)] = [0, 0]
        idx = 0 if ev.side is _BUY else 1
        self.orders[key] = _Open(ev.owner, ev.symbol, ev.side, ev.qty, ev.client_id, ev.venue, sides, idx)
        sides[idx] += ev.qty
        per_symbol = self.per_symbol
        per_symbol[ev.symbol] = per_symbol.get(ev.symbol, 0) + 1

    def _remove(self, key: tuple[str, int]) -> None:
        o = self.orders.pop(key, None)
        if o is None:
            return
        o.sides[o.idx] -= o.leaves
        per_symbol = self.per_symbol
        n = per_symbol[o.symbol] - 1
        if n:
            per_symbol[o.symbol] = n
        else:
            del per_symbol[o.symbol]

    def on_fill(self, ev: Fill) -> None:
        key = (ev.venue, ev.order_id)
        o = self.orders.get(key)
        if o is None:
            return
        if ev.leaves_qty <= 0:
            self._remove(key)
        else:
            o.sides[o.idx] += ev.leaves_qty - o.leaves
            o.leaves = ev.leaves_qty

    def on_canceled(self, ev: OrderCanceled) -> None:
        o = self.orders.pop((ev.venue, ev.order_id), None)
        if o is None:
            return
        o.sides[o.idx] -= o.leaves
        per_symbol = self.per_symbol
        n = per_symbol[o.symbol] - 1
        if n:
            per_symbol[o.symbol] = n
        else:
            del per_symbol[o.symbol]

    def on_replaced(self, ev: OrderReplaced) -> None:
        o = self.orders.get((ev.venue, ev.order_id))
        if o is None:
            return
        o.sides[o.idx] += ev.qty - o.leaves
        o.leaves = ev.qty
        o.client_id = ev.client_id

    def open_side_qty(self, owner: str, symbol: str, side: Side) -> int:
        sides = self.open_qty.get((owner, symbol))
        if sides is None:
            return 0
        return sides[0] if side is _BUY else sides[1]

    def has_open(self, symbol: str) -> bool:
        return symbol in self.per_symbol

    def open_orders(
        self, *, owner: str | None = None, symbol: str | None = None, venue: str | None = None
    ) -> list[tuple[str, int, _Open]]:
        """(venue, order_id, order) for every tracked open order matching the filters."""
        return [
            (v, oid, o)
            for (v, oid), o in self.orders.items()
            if (owner is None or o.owner == owner)
            and (symbol is None or o.symbol == symbol)
            and (venue is None or v == venue)
        ]


class PositionBook:
    def __init__(self, bus: Bus, clock: Clock, instruments: dict[str, Instrument]) -> None:
        self.bus = bus
        self.clock = clock
        self.positions: dict[tuple[str, str], Position] = {}
        self.marks: dict[str, float] = {}  # symbol -> mark in ticks
        self.scopes: dict[str, ScopePnL] = {}
        self._mult = {s: float(i.tick_size * i.lot_size) for s, i in instruments.items()}
        self._tick = {s: float(i.tick_size) for s, i in instruments.items()}
        self._by_symbol: dict[str, list[Position]] = {}
        self._listeners: list[Callable[[tuple[str, ...], Position | None], None]] = []
        self.ignored: set[str] = set()  # mirror owners (see OrderTracker.ignored): their fills count once
        # (owner, symbol) -> the risk scopes a fill of it touches: built once, not three strings per fill
        self._scopes: dict[tuple[str, str], tuple[str, str, str]] = {}

    def attach(self, bus: Bus) -> None:
        bus.subscribe(Fill, self.on_fill)
        bus.subscribe(BBO, self.on_bbo)
        bus.subscribe(PriceTick, self.on_price)

    def on_update(self, listener: Callable[[tuple[str, ...], Position | None], None]) -> None:
        """``listener(scopes, position)`` after P&L changed; ``position`` is the filled one on a fill."""
        self._listeners.append(listener)

    # --- queries ---------------------------------------------------------------------------------------
    def qty(self, owner: str, symbol: str) -> int:
        p = self.positions.get((owner, symbol))
        return 0 if p is None else p.qty

    def get(self, owner: str, symbol: str) -> Position | None:
        return self.positions.get((owner, symbol))

    def unrealised(self, p: Position) -> float:
        mark = self.marks.get(p.symbol)
        if mark is None or p.qty == 0:
            return 0.0
        return (mark - p.avg_px) * p.qty * self._mult.get(p.symbol, 1.0)

    def pnl(self, p: Position) -> float:
        """Net P&L of one position: realised + unrealised - fees."""
        return p.realised + self.unrealised(p) - p.fees

    def total(self, scope: str) -> float:
        if scope == DESK:
            items = self.positions.values()
        elif scope.startswith("bot:"):
            owner = scope[4:]
            items = [p for p in self.positions.values() if p.owner == owner]
        else:
            items = self._by_symbol.get(scope.removeprefix("instrument:"), [])
        return sum(self.pnl(p) for p in items)

    def scope_pnl(self, scope: str) -> ScopePnL:
        """Day P&L and peak of ``scope``, brought up to date."""
        s = self.scopes.get(scope)
        if s is None:
            s = self.scopes[scope] = ScopePnL()
        total = self.total(scope)
        day = self.clock.time_ns() // _DAY_NS
        if day != s.day:  # a new UTC day: today's P&L starts from here
            s.day = day
            s.day_start = total
            s.peak = 0.0
        s.day_pnl = total - s.day_start
        if s.day_pnl > s.peak:
            s.peak = s.day_pnl
        return s

    def mark_price(self, symbol: str) -> float | None:
        return self.marks.get(symbol)

    # --- updates ---------------------------------------------------------------------------------------
    def on_fill(self, ev: Fill) -> None:
        key = (ev.owner, ev.symbol)
        p = self.positions.get(key)
        if p is None:
            if ev.owner in self.ignored:
                return
            self.scopes_touch(ev.owner, ev.symbol)  # start the day's P&L before the first fill lands
            p = self.positions[key] = Position(ev.owner, ev.symbol)
            self._by_symbol.setdefault(ev.symbol, []).append(p)
            self._scopes[key] = (DESK, "bot:" + ev.owner, "instrument:" + ev.symbol)
        signed = ev.qty if ev.side is _BUY else -ev.qty
        pos = p.qty
        if pos == 0 or (pos > 0) == (signed > 0):
            new = pos + signed
            p.avg_px = (p.avg_px * abs(pos) + ev.price * ev.qty) / abs(new)
            p.qty = new
        else:
            closed = min(ev.qty, abs(pos))
            direction = 1 if pos > 0 else -1
            p.realised += (ev.price - p.avg_px) * closed * direction * self._mult.get(ev.symbol, 1.0)
            p.qty = pos + signed
            if p.qty == 0:
                p.avg_px = 0.0
            elif (p.qty > 0) != (pos > 0):  # flipped through zero: the rest opens at the fill price
                p.avg_px = float(ev.price)
        p.fees += ev.fee
        p.venue = ev.venue
        p.fills += 1
        scopes = self._scopes.get(key) or (DESK, "bot:" + ev.owner, "instrument:" + ev.symbol)
        for listener in self._listeners:
            listener(scopes, p)

    def scopes_touch(self, owner: str, symbol: str) -> None:
        for scope in (DESK, "bot:" + owner, "instrument:" + symbol):
            self.scope_pnl(scope)

    def _mark(self, symbol: str, ticks: float) -> None:
        self.marks[symbol] = ticks
        held = self._by_symbol.get(symbol)
        if not held or not self._listeners:
            return
        scopes = [DESK, "instrument:" + symbol]
        scopes.extend("bot:" + p.owner for p in held if p.qty)
        for listener in self._listeners:
            listener(tuple(scopes), None)

    def on_bbo(self, ev: BBO) -> None:
        if ev.bid_px is not None and ev.ask_px is not None:
            self._mark(ev.symbol, (ev.bid_px + ev.ask_px) / 2)

    def on_price(self, ev: PriceTick) -> None:
        tick = self._tick.get(ev.symbol)
        if tick is not None:
            self._mark(ev.symbol, ev.price / tick)

    def snapshot(self) -> list[dict[str, object]]:
        out = []
        for p in self.positions.values():
            out.append(
                {
                    "owner": p.owner,
                    "symbol": p.symbol,
                    "qty_lots": p.qty,
                    "avg_px_ticks": round(p.avg_px, 6),
                    "realised": round(p.realised, 8),
                    "unrealised": round(self.unrealised(p), 8),
                    "fees": round(p.fees, 8),
                }
            )
        return out
