"""The matching engine as a desk venue: what the order router, bots and the FIX gateway talk to."""

from __future__ import annotations

from engines.matching.engine import MatchingEngine
from engines.orders import OrderRequest
from engines.venue import CancelResult, OpenOrder


class MatchingVenue:
    """:class:`engines.venue.Venue` over a :class:`MatchingEngine` (in-process, always connected).

    Outcomes arrive as bus events published by the engine. With ``durable_ack`` every call returns
    only after the engine's journal holds its effect (``await engine.flush()``), so a caller that
    acknowledges after ``await router.submit(...)`` (the FIX gateway) acknowledges only journaled
    orders.
    """

    def __init__(self, engine: MatchingEngine, *, name: str | None = None, durable_ack: bool = True) -> None:
        self.engine = engine
        self.name = name or engine.venue
        self.durable_ack = durable_ack

    @property
    def connected(self) -> bool:
        return self.engine.state == "running"

    async def _durable(self) -> None:
        if self.durable_ack:
            await self.engine.flush()

    async def submit(self, order: OrderRequest) -> None:
        self.engine.submit(order)
        await self._durable()

    async def cancel(self, symbol: str, client_id: str, owner: str) -> CancelResult:
        view = self.engine.order(symbol, owner=owner, client_id=client_id)
        ok = self.engine.cancel(symbol, owner=owner, client_id=client_id)
        await self._durable()
        return CancelResult(
            self.name,
            symbol,
            None if view is None else view.order_id,
            client_id,
            owner,
            ok,
            "" if ok else "order not open",
        )

    async def replace(
        self, symbol: str, client_id: str, owner: str, new_client_id: str, price: int | None, qty: int
    ) -> None:
        self.engine.replace(symbol, owner=owner, client_id=client_id, new_client_id=new_client_id, price=price, qty=qty)
        await self._durable()

    async def open_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]:
        return self.engine.open_orders(owner=owner, symbol=symbol)

    async def cancel_all(self, owner: str | None = None, symbol: str | None = None) -> list[CancelResult]:
        results = self.engine.cancel_all(owner=owner, symbol=symbol)
        await self._durable()
        return results

    async def flush(self) -> None:
        await self.engine.flush()
