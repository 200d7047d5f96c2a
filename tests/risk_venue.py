"""A small real Venue for the risk tests: rests limit orders, fills on demand, can be disconnected.

It behaves like a remote (FIX) venue as seen from the desk: while disconnected, submits and cancels
fail, but it still reports the orders it knows are open (the desk's view of them). With
``async_acks`` a cancel is only acknowledged later (the ``OrderCanceled`` comes on the next loop turn),
as a FIX venue's ExecutionReport would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from engines.bus import Bus
from engines.orders import Fill, Liquidity, OrderAccepted, OrderCanceled, OrderRequest, Side
from engines.venue import CancelResult, OpenOrder


class VenueDown(ConnectionError):
    pass


@dataclass
class _Resting:
    order_id: int
    req: OrderRequest
    leaves: int
    filled: int = 0


class ToyVenue:
    def __init__(self, bus: Bus, name: str = "toy", *, async_acks: bool = False) -> None:
        self.bus = bus
        self.name = name
        self.async_acks = async_acks
        self._connected = True
        self.orders: dict[tuple[str, str], _Resting] = {}  # (owner, client_id)
        self.next_id = 1
        self.trade_id = 0
        self.cancel_calls = 0

    @property
    def connected(self) -> bool:
        return self._connected

    def disconnect(self) -> None:
        self._connected = False

    def reconnect(self) -> None:
        self._connected = True

    async def submit(self, order: OrderRequest) -> None:
        if not self._connected:
            raise VenueDown(f"{self.name} disconnected")
        oid = self.next_id
        self.next_id += 1
        self.orders[(order.owner, order.client_id)] = _Resting(oid, order, order.qty)
        self.bus.publish(
            OrderAccepted(
                symbol=order.symbol,
                order_id=oid,
                client_id=order.client_id,
                owner=order.owner,
                side=order.side,
                type=order.type,
                tif=order.tif,
                price=order.price,
                qty=order.qty,
                venue=self.name,
            )
        )

    def fill(self, owner: str, client_id: str, qty: int, price: int | None = None, fee: float = 0.0) -> None:
        r = self.orders[(owner, client_id)]
        r.leaves -= qty
        r.filled += qty
        self.trade_id += 1
        if r.leaves == 0:
            del self.orders[(owner, client_id)]
        self.bus.publish(
            Fill(
                symbol=r.req.symbol,
                order_id=r.order_id,
                client_id=client_id,
                owner=owner,
                side=r.req.side,
                price=price if price is not None else (r.req.price or 0),
                qty=qty,
                leaves_qty=r.leaves,
                liquidity=Liquidity.MAKER,
                fee=fee,
                trade_id=self.trade_id,
                venue=self.name,
            )
        )

    def _canceled(self, r: _Resting) -> None:
        self.bus.publish(
            OrderCanceled(
                symbol=r.req.symbol,
                order_id=r.order_id,
                client_id=r.req.client_id,
                owner=r.req.owner,
                side=r.req.side,
                price=r.req.price,
                canceled_qty=r.leaves,
                filled_qty=r.filled,
                reason="canceled",
                venue=self.name,
            )
        )

    def _cancel_one(self, r: _Resting) -> CancelResult:
        del self.orders[(r.req.owner, r.req.client_id)]
        self.cancel_calls += 1
        if self.async_acks:
            asyncio.get_running_loop().call_soon(self._canceled, r)
            return CancelResult(
                self.name, r.req.symbol, r.order_id, r.req.client_id, r.req.owner, False, "sent"
            )
        self._canceled(r)
        return CancelResult(self.name, r.req.symbol, r.order_id, r.req.client_id, r.req.owner, True)

    async def cancel(self, symbol: str, client_id: str, owner: str) -> CancelResult:
        if not self._connected:
            raise VenueDown(f"{self.name} disconnected")
        r = self.orders.get((owner, client_id))
        if r is None:
            return CancelResult(self.name, symbol, None, client_id, owner, False, "unknown order")
        return self._cancel_one(r)

    async def replace(self, symbol, client_id, owner, new_client_id, price, qty) -> None:  # pragma: no cover
        raise NotImplementedError

    async def open_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        return [
            OpenOrder(
                self.name,
                r.req.symbol,
                r.order_id,
                r.req.client_id,
                r.req.owner,
                r.req.side,
                r.req.price,
                r.leaves,
                r.filled,
            )
            for r in self.orders.values()
            if (owner is None or r.req.owner == owner) and (symbol is None or r.req.symbol == symbol)
        ]

    async def cancel_all(self, owner: str | None = None, symbol: str | None = None) -> list[CancelResult]:
        if not self._connected:
            raise VenueDown(f"{self.name} disconnected")
        return [
            self._cancel_one(r)
            for r in list(self.orders.values())
            if (owner is None or r.req.owner == owner) and (symbol is None or r.req.symbol == symbol)
        ]


def order(
    symbol: str = "BTC-USD",
    side: Side = Side.BUY,
    qty: int = 10,
    price: int | None = 130_000,
    owner: str = "mm-btc",
    client_id: str = "c1",
    venue: str = "toy",
    **kw,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol, side=side, qty=qty, price=price, owner=owner, client_id=client_id, venue=venue, **kw
    )


def make_desk(
    tmp_path,
    *,
    risk: dict | None = None,
    clock=None,
    builders=("engines.risk.service:build",),
    venue_kw: dict | None = None,
):
    """A desk with only the risk engine (and a ToyVenue named "toy"), files in ``tmp_path``."""
    from engines.clock import ManualClock
    from engines.config import DeskConfig
    from engines.runtime import Desk

    cfg = DeskConfig(risk=risk or {}, mm=[], grid=[])
    desk = Desk(cfg, clock=clock or ManualClock(), data_dir=tmp_path).build(list(builders))
    venue = ToyVenue(desk.bus, **(venue_kw or {}))
    desk.router.add_venue(venue)
    return desk, venue
