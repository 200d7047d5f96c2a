"""P&L of one bot on one instrument, by the average-cost method. Exact (Decimal), in quote currency.

* ``position`` is signed base units, starting at ``starting_inventory`` valued at ``starting_price``
  (the first reference price the bot saw, persisted so a restart keeps it).
* A fill that opens or adds to the position moves the average price:
  avg ← (|pos| * avg + qty * price) / (|pos| + qty).
* A fill that reduces the position realises (price - avg) * closed_qty * sign(pos) and leaves avg
  unchanged; a fill larger than the position closes it (realising on the closed part) and opens the
  remainder at the fill price (a *flip*). At zero the average resets to 0.
* ``fees`` accumulate separately (positive = paid, negative = rebate) and are never folded into avg.
* unrealised = position * (mark - avg), marked to the mid; net = realised + unrealised - fees.
* inventory_value = position * mark; starting_value = starting_inventory * starting_price.
* return_pct = net / capital * 100.
* Daily loss = the drop of net since the first mark of the UTC day; drawdown = peak net - net.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engines.orders import Side

ZERO = Decimal(0)


@dataclass(slots=True)
class PnL:
    capital: Decimal = Decimal(100_000)
    starting_inventory: Decimal = ZERO
    starting_price: Decimal = ZERO
    position: Decimal = ZERO
    avg_price: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    mark: Decimal = ZERO
    fills: int = 0
    volume: Decimal = ZERO  # base units traded
    peak_net: Decimal = ZERO
    day: int = -1  # UTC day number of day_start_net
    day_start_net: Decimal = ZERO
    seen: set[tuple[int, int]] = field(default_factory=set)  # (order_id, trade_id) applied

    def __post_init__(self) -> None:
        if self.position == ZERO and self.starting_inventory:
            self.position = self.starting_inventory
            self.avg_price = self.starting_price

    # --- updates ------------------------------------------------------------------------------------
    def on_fill(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal = ZERO,
                key: tuple[int, int] | None = None) -> bool:
        """Apply one fill; ``key`` (order_id, trade_id) makes it idempotent. Returns False for a duplicate."""
        if key is not None:
            if key in self.seen:
                return False
            self.seen.add(key)
        self.fills += 1
        self.volume += qty
        self.fees += fee
        pos = self.position
        delta = qty if side is Side.BUY else -qty
        if pos == ZERO or (pos > 0) == (delta > 0):
            new = abs(pos) + qty
            self.avg_price = (abs(pos) * self.avg_price + qty * price) / new
            self.position = pos + delta
        else:
            closed = min(qty, abs(pos))
            sign = 1 if pos > 0 else -1
            self.realised += (price - self.avg_price) * closed * sign
            self.position = pos + delta
            if self.position == ZERO:
                self.avg_price = ZERO
            elif qty > abs(pos):  # flipped: the remainder opens at the fill price
                self.avg_price = price
        self._track()
        return True

    def mark_to(self, mid: Decimal, day: int | None = None) -> None:
        self.mark = mid
        if day is not None and day != self.day:
            self.day = day
            self.day_start_net = self.net
        self._track()

    def _track(self) -> None:
        net = self.net
        if net > self.peak_net:
            self.peak_net = net

    # --- figures --------------------------------------------------------------------------------------
    @property
    def unrealised(self) -> Decimal:
        if self.position == ZERO or self.mark == ZERO:
            return ZERO
        return self.position * (self.mark - self.avg_price)

    @property
    def net(self) -> Decimal:
        return self.realised + self.unrealised - self.fees

    @property
    def inventory_value(self) -> Decimal:
        return self.position * self.mark

    @property
    def starting_value(self) -> Decimal:
        return self.starting_inventory * self.starting_price

    @property
    def return_pct(self) -> Decimal:
        return self.net / self.capital * 100

    @property
    def daily_pnl(self) -> Decimal:
        return self.net - self.day_start_net

    @property
    def drawdown(self) -> Decimal:
        return self.peak_net - self.net
