"""A scripted in-memory venue for market-maker unit tests: accepts, rejects, fills and cancels exactly
when the test says, publishing the same bus events a real venue does."""

from __future__ import annotations

from dataclasses import dataclass

from engines.bus import Bus
from engines.orders import Fill, Liquidity, OrderAccepted, OrderCanceled, OrderRejected, OrderRequest
from engines.venue import CancelResult, OpenOrder


@dataclass
class _Resting:
    req: OrderRequest
    order_id: int
    filled: int = 0


class ScriptedVenue:
    def __init__(self, bus: Bus, name: str = "sim") -> None:
        self.bus = bus
        self.name = name
        self._connected = True
        self.open: dict[str, _Resting] = {}
        self.submitted: list[OrderRequest] = []
        self.cancels: list[str] = []
        self.reject_reason: str | None = None
        self._oid = 0
        self._tid = 0

    @property
    def connected(self) -> bool:
        return self._connected

    async def submit(self, order: OrderRequest) -> None:
        self.submitted.append(order)
        if self.reject_reason is not None:
            self.bus.publish(OrderRejected(symbol=order.symbol, client_id=order.client_id, owner=order.owner,
                                           side=order.side, price=order.price, qty=order.qty,
                                           reason=self.reject_reason, source=self.name, venue=self.name))
            return
        self._oid += 1
        self.open[order.client_id] = _Resting(order, self._oid)
        self.bus.publish(OrderAccepted(symbol=order.symbol, order_id=self._oid, client_id=order.client_id,
                                       owner=order.owner, side=order.side, type=order.type, tif=order.tif,
                                       price=order.price, qty=order.qty, venue=self.name))

    def place_unknown(self, req: OrderRequest) -> None:
        """An order resting at the venue that the bot never sent (or forgot)."""
        self._oid += 1
        self.open[req.client_id] = _Resting(req, self._oid)

    def fill(self, client_id: str, qty: int, price: int | None = None, fee: float = 0.0) -> Fill:
        r = self.open[client_id]
        r.filled += qty
        leaves = r.req.qty - r.filled
        self._tid += 1
        ev = self.bus.publish(Fill(symbol=r.req.symbol, order_id=r.order_id, client_id=client_id,
                                   owner=r.req.owner, side=r.req.side, price=price or r.req.price or 0, qty=qty,
                                   leaves_qty=leaves, liquidity=Liquidity.MAKER, fee=fee, trade_id=self._tid,
                                   venue=self.name))
        if leaves == 0:
            del self.open[client_id]
        return ev

    async def cancel(self, symbol: str, client_id: str, owner: str) -> CancelResult:
        self.cancels.append(client_id)
        r = self.open.pop(client_id, None)
        if r is None:
            return CancelResult(self.name, symbol, None, client_id, owner, False, "unknown order")
        self.bus.publish(OrderCanceled(symbol=symbol, order_id=r.order_id, client_id=client_id, owner=owner,
                                       side=r.req.side, price=r.req.price, canceled_qty=r.req.qty - r.filled,
                                       filled_qty=r.filled, reason="canceled", venue=self.name))
        return CancelResult(self.name, symbol, r.order_id, client_id, owner, True)

    async def replace(self, symbol, client_id, owner, new_client_id, price, qty) -> None:  # pragma: no cover
        raise NotImplementedError

    async def open_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        return [OpenOrder(self.name, r.req.symbol, r.order_id, cid, r.req.owner, r.req.side, r.req.price,
                          r.req.qty - r.filled, r.filled)
                for cid, r in self.open.items()
                if (owner is None or r.req.owner == owner) and (symbol is None or r.req.symbol == symbol)]

    async def cancel_all(self, owner: str | None = None, symbol: str | None = None) -> list[CancelResult]:
        return [await self.cancel(o.symbol, o.client_id, o.owner) for o in await self.open_orders(owner, symbol)]
