"""The latest reference price for one (symbol, source), with its age on the desk clock.

Every source publishes ``PriceTick`` (``engines.events``): the simulated prices (``source="sim"``), the
venue-mid feed (``"mid:<venue>"``), the Binance book-ticker client (``"binance"``). A consumer picks
one source; staleness is measured on the injected clock, so tests drive it by hand.
"""

from __future__ import annotations

from collections.abc import Callable

from engines.bus import Bus, Subscription
from engines.clock import Clock
from engines.events import PriceTick


class ReferenceTracker:
    def __init__(self, bus: Bus, clock: Clock, symbol: str, source: str,
                 on_update: Callable[[float], None] | None = None) -> None:
        self.symbol = symbol
        self.source = source
        self.clock = clock
        self.price: float | None = None
        self.updated: float | None = None  # clock.monotonic() of the last tick
        self.ticks = 0
        self._on_update = on_update
        self._sub: Subscription | None = bus.subscribe(PriceTick, self._on_tick, key=symbol)

    def _on_tick(self, ev: PriceTick) -> None:
        if ev.source != self.source or not ev.price > 0:
            return
        self.price = ev.price
        self.updated = self.clock.monotonic()
        self.ticks += 1
        if self._on_update is not None:
            self._on_update(ev.price)

    def age(self) -> float | None:
        return None if self.updated is None else self.clock.monotonic() - self.updated

    def stale(self, after: float) -> bool:
        age = self.age()
        return age is None or age > after

    def close(self) -> None:
        if self._sub is not None:
            self._sub.cancel()
            self._sub = None
