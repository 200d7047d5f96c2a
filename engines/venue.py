"""Venues and the order router: the one path every order takes from a source to a venue.

``OrderRouter.submit`` asks the desk's pre-trade gate first; a refused order never reaches a venue and
its rejection (with the reason) is published on the bus. Cancels always pass: a halted desk must
still be able to take risk off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from engines.bus import Bus
from engines.orders import OrderRejected, OrderRequest, Side


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order resting at a venue, as the venue reports it."""

    venue: str
    symbol: str
    order_id: int
    client_id: str
    owner: str
    side: Side
    price: int | None
    qty: int  # open (leaves) quantity
    filled_qty: int = 0


@dataclass(frozen=True, slots=True)
class CancelResult:
    venue: str
    symbol: str
    order_id: int | None
    client_id: str
    owner: str
    confirmed: bool
    reason: str = ""


@runtime_checkable
class Venue(Protocol):
    """Where orders go. Outcomes (accepts, fills, cancels, rejects) arrive as bus events."""

    name: str

    @property
    def connected(self) -> bool: ...

    async def submit(self, order: OrderRequest) -> None: ...

    async def cancel(self, symbol: str, client_id: str, owner: str) -> CancelResult: ...

    async def replace(
        self, symbol: str, client_id: str, owner: str, new_client_id: str, price: int | None, qty: int
    ) -> None: ...

    async def open_orders(self, owner: str | None = None, symbol: str | None = None) -> list[OpenOrder]: ...

    async def cancel_all(self, owner: str | None = None, symbol: str | None = None) -> list[CancelResult]: ...


class PreTradeGate(Protocol):
    def check(self, order: OrderRequest) -> str | None:
        """None to pass, or the reason the order is refused."""
        ...


class PassGate:
    """A gate that passes everything: used only until the risk engine installs the real one."""

    def check(self, order: OrderRequest) -> str | None:
        return None


class UnknownVenue(LookupError):
    pass


class OrderRouter:
    def __init__(self, bus: Bus, gate: PreTradeGate | None = None) -> None:
        self.bus = bus
        self.gate: PreTradeGate = gate or PassGate()
        self.venues: dict[str, Venue] = {}

    def add_venue(self, venue: Venue) -> None:
        self.venues[venue.name] = venue

    def venue(self, name: str) -> Venue:
        try:
            return self.venues[name]
        except KeyError:
            raise UnknownVenue(f"no venue named {name!r} (known: {', '.join(self.venues)})") from None

    def check(self, order: OrderRequest) -> str | None:
        """Run the gate; publish the rejection if refused. Returns the reason or None."""
        reason = self.gate.check(order)
        if reason is not None:
            self.bus.publish(
                OrderRejected(
                    symbol=order.symbol,
                    client_id=order.client_id,
                    owner=order.owner,
                    side=order.side,
                    price=order.price,
                    qty=order.qty,
                    reason=reason,
                    source="risk",
                    venue=order.venue,
                )
            )
        return reason

    async def submit(self, order: OrderRequest) -> bool:
        """Gate, then send. Returns False if the gate refused the order."""
        if self.check(order) is not None:
            return False
        await self.venue(order.venue).submit(order)
        return True

    async def cancel(self, venue: str, symbol: str, client_id: str, owner: str) -> CancelResult:
        return await self.venue(venue).cancel(symbol, client_id, owner)
