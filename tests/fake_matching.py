"""TEMPORARY stand-in for engines.matching.engine until the real engine lands (to be deleted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engines.marketdata import BBO, Depth, Trade
from engines.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from engines.venue import OpenOrder


@dataclass
class SubmitResult:
    order_id: int | None
    status: OrderStatus
    reason: str
    filled_qty: int
    leaves_qty: int


@dataclass
class View:
    order_id: int
    symbol: str
    side: Side
    price: int | None
    qty: int
    owner: str
    client_id: str
    type: OrderType
    tif: TimeInForce
    filled_qty: int = 0
    leaves_qty: int = 0
    status: OrderStatus = OrderStatus.NEW
    reason: str = ""
    lifecycle: list[Any] = field(default_factory=list)


class FakeEngine:
    name = "matching"

    def __init__(self, desk: Any) -> None:
        self.bus = desk.bus
        self.symbols = list(desk.instruments)
        self.orders: dict[int, View] = {}
        self.next_id = 1
        self.trades: dict[str, list[Trade]] = {s: [] for s in self.symbols}
        self.tid = 0

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def status(self) -> dict[str, Any]:
        return {"state": "running"}

    def _resting(self, symbol: str, side: Side) -> list[View]:
        rs = [o for o in self.orders.values() if o.symbol == symbol and o.side is side and o.status.is_open]
        rs.sort(key=lambda o: ((o.price or 0) * (-1 if side is Side.BUY else 1), o.order_id))
        return rs

    def submit(self, req: OrderRequest) -> SubmitResult:
        opp = self._resting(req.symbol, req.side.opposite)
        def crosses(o: View) -> bool:
            if req.price is None:
                return True
            return o.price <= req.price if req.side is Side.BUY else o.price >= req.price
        if req.post_only and opp and crosses(opp[0]):
            return SubmitResult(None, OrderStatus.REJECTED, "post-only order would cross", 0, 0)
        oid = self.next_id
        self.next_id += 1
        v = View(oid, req.symbol, req.side, req.price, req.qty, req.owner, req.client_id, req.type, req.tif,
                 leaves_qty=req.qty)
        self.orders[oid] = v
        for m in opp:
            if not v.leaves_qty or not crosses(m):
                break
            q = min(m.leaves_qty, v.leaves_qty)
            for o in (m, v):
                o.leaves_qty -= q
                o.filled_qty += q
                o.status = OrderStatus.FILLED if not o.leaves_qty else OrderStatus.PARTIALLY_FILLED
            self.tid += 1
            t = Trade(symbol=req.symbol, trade_id=self.tid, price=m.price, qty=q, aggressor=req.side,
                      maker_order_id=m.order_id, taker_order_id=oid, maker_owner=m.owner, taker_owner=req.owner,
                      maker_fee=0.0, taker_fee=0.0)
            self.bus.publish(t)
            self.trades[req.symbol].append(t)
        if v.leaves_qty and (req.type is OrderType.MARKET or req.tif is not TimeInForce.GTC):
            v.status = OrderStatus.EXPIRED
            v.leaves_qty = 0
        self._md(req.symbol)
        return SubmitResult(oid, v.status, "", v.filled_qty, v.leaves_qty)

    def _md(self, symbol: str) -> None:
        bids, asks = self.depth(symbol, 20)
        self.bus.publish(Depth(symbol=symbol, bids=bids, asks=asks))
        b = self.bbo(symbol)
        self.bus.publish(b)

    def _find(self, symbol, owner, client_id, order_id) -> View | None:
        for o in self.orders.values():
            if o.symbol != symbol:
                continue
            if order_id is not None and o.order_id == order_id and (owner is None or o.owner == owner):
                return o
            if client_id is not None and o.client_id == client_id and o.owner == owner:
                return o
        return None

    def cancel(self, symbol, *, owner, client_id=None, order_id=None, reason="") -> bool:
        o = self._find(symbol, owner, client_id, order_id)
        if o is None or not o.status.is_open:
            return False
        o.status = OrderStatus.CANCELED
        o.leaves_qty = 0
        self._md(symbol)
        return True

    def replace(self, symbol, *, owner, client_id=None, order_id=None, new_client_id, price, qty) -> SubmitResult:
        o = self._find(symbol, owner, client_id, order_id)
        if o is None or not o.status.is_open:
            return SubmitResult(None, OrderStatus.REJECTED, "unknown order", 0, 0)
        o.client_id = new_client_id
        if price is not None:
            o.price = price
        o.leaves_qty = qty
        self._md(symbol)
        return SubmitResult(o.order_id, o.status, "", o.filled_qty, o.leaves_qty)

    def open_orders(self, *, owner=None, symbol=None):
        return [OpenOrder("sim", o.symbol, o.order_id, o.client_id, o.owner, o.side, o.price, o.leaves_qty, o.filled_qty)
                for o in self.orders.values() if o.status.is_open and owner in (None, o.owner) and symbol in (None, o.symbol)]

    def order(self, symbol, *, owner=None, client_id=None, order_id=None):
        return self._find(symbol, owner, client_id, order_id)

    def bbo(self, symbol):
        bids, asks = self.depth(symbol, 1)
        return BBO(symbol=symbol, bid_px=bids[0][0] if bids else None, bid_qty=bids[0][1] if bids else 0,
                   ask_px=asks[0][0] if asks else None, ask_qty=asks[0][1] if asks else 0)

    def depth(self, symbol, levels):
        out = []
        for side in (Side.BUY, Side.SELL):
            lv: dict[int, int] = {}
            for o in self._resting(symbol, side):
                lv[o.price] = lv.get(o.price, 0) + o.leaves_qty
            out.append(tuple(list(lv.items())[:levels]))
        return out[0], out[1]

    def recent_trades(self, symbol, n):
        return self.trades[symbol][-n:]

    def stats(self, symbol):
        return {"trades": len(self.trades[symbol])}


def build(desk):
    e = FakeEngine(desk)
    desk.services["matching"] = e
    return [e]
