"""Reference prices from a venue's own book: the BBO mid, published as ``PriceTick(source="mid:<venue>")``.

With a one-sided or empty book no price is published, so a consumer sees the reference go stale
rather than a made-up mid. The matching engine publishes BBO only when it changes, so a quiet book
ages this reference: bots quoting on it want a longer ``stale_after``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engines.bus import Bus, Subscription
from engines.events import PriceTick
from engines.instruments import Instrument
from engines.marketdata import BBO


class VenueMidFeed:
    def __init__(self, bus: Bus, instruments: dict[str, Instrument], venue: str = "sim") -> None:
        self.name = f"feed-mid-{venue}"
        self.bus = bus
        self.venue = venue
        self.source = f"mid:{venue}"
        self.instruments = instruments
        self.published = 0
        self._sub: Subscription | None = None

    def on_bbo(self, ev: BBO) -> None:
        if ev.venue != self.venue or ev.bid_px is None or ev.ask_px is None:
            return
        inst = self.instruments.get(ev.symbol)
        if inst is None:
            return
        both = ev.bid_px + ev.ask_px
        mid = float(inst.tick_size * Decimal(both) / 2)
        self.published += 1
        self.bus.publish(PriceTick(symbol=ev.symbol, price=mid, source=self.source))

    async def start(self) -> None:
        self._sub = self.bus.subscribe(BBO, self.on_bbo)

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.cancel()
            self._sub = None

    def status(self) -> dict[str, Any]:
        return {"venue": self.venue, "published": self.published}
