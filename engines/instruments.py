"""Instruments: the integer tick/lot grid every engine works in, and conversion at the edges."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class OffGridError(ValueError):
    """A price or quantity that is not a whole number of ticks or lots."""


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty_lots: int = 1
    base: str = ""
    quote: str = ""

    def to_ticks(self, price: Decimal | str | float) -> int:
        value = Decimal(str(price)) / self.tick_size
        if value != value.to_integral_value():
            raise OffGridError(f"{self.symbol}: price {price} is not a multiple of tick size {self.tick_size}")
        return int(value)

    def to_lots(self, qty: Decimal | str | float) -> int:
        value = Decimal(str(qty)) / self.lot_size
        if value != value.to_integral_value():
            raise OffGridError(f"{self.symbol}: quantity {qty} is not a multiple of lot size {self.lot_size}")
        return int(value)

    def price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def qty(self, lots: int) -> Decimal:
        return lots * self.lot_size

    def ticks_near(self, price: float) -> int:
        """Nearest tick to a float price (for reference prices, which are floats)."""
        return round(price / float(self.tick_size))

    def notional(self, ticks: int, lots: int) -> Decimal:
        return ticks * self.tick_size * lots * self.lot_size

    def fmt_price(self, ticks: int | None) -> str:
        return "—" if ticks is None else f"{self.price(ticks):f}"

    def fmt_qty(self, lots: int) -> str:
        return f"{self.qty(lots).normalize():f}"
