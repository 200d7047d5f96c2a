"""Seeded simulated taker flow against the desk's own matching engine, so the demo desk shows fills.

Arrivals per instrument are a Poisson process (exponential gaps, mean ``1/rate`` s); each order is an
IOC limit ``slippage_bps`` through the simulated reference, with an exponentially distributed notional
(mean ``mean_notional``, capped at ``max_notional``), rounded down to the lot grid. The side is biased
by the simulated price's drift relative to the book: with ``gap`` the reference's distance above the
book's mid in bps, P(buy) = 1/2 + drift_bias * tanh(gap / drift_scale_bps) — when the simulated price
runs ahead of the quotes, takers lift the stale offers (as informed flow would), so market makers
see adverse selection as well as spread capture.

Only ever trades on the matching engine's venue (``config.matching.venue``): never on a FIX or real
venue. Deterministic for a seed: :meth:`SimTakers.next_order` draws the same sequence every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import zlib
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from engines.bus import Bus, Subscription
from engines.events import PriceTick
from engines.instruments import Instrument
from engines.marketdata import BBO
from engines.orders import OrderRequest, OrderType, Side, TimeInForce
from engines.sim.config import TakerConfig
from engines.venue import OrderRouter

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine


class SimTakers:
    name = "sim-takers"

    def __init__(self, bus: Bus, router: OrderRouter, instruments: dict[str, Instrument], cfg: TakerConfig,
                 *, venue: str = "sim", seed: int = 7) -> None:
        self.bus = bus
        self.router = router
        self.cfg = cfg
        self.venue = venue
        self.instruments = {s: i for s, i in instruments.items() if not cfg.symbols or s in cfg.symbols}
        self._rng = random.Random(seed * 7_919 + zlib.crc32(b"takers"))
        self.reference: dict[str, float] = {}
        self.mid: dict[str, float] = {}
        self.sent = 0
        self.refused = 0
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._seq = 0

    # --- market view --------------------------------------------------------------------------------
    def _on_tick(self, ev: PriceTick) -> None:
        if ev.source == "sim":
            self.reference[ev.symbol] = ev.price

    def _on_bbo(self, ev: BBO) -> None:
        inst = self.instruments.get(ev.symbol)
        if ev.venue != self.venue or inst is None:
            return
        if ev.bid_px is not None and ev.ask_px is not None:
            self.mid[ev.symbol] = float(inst.tick_size) * (ev.bid_px + ev.ask_px) / 2
        else:
            self.mid.pop(ev.symbol, None)

    def buy_probability(self, symbol: str) -> float:
        ref = self.reference.get(symbol)
        mid = self.mid.get(symbol)
        if ref is None or mid is None or mid <= 0:
            return 0.5
        gap_bps = (ref - mid) / mid * 1e4
        return 0.5 + self.cfg.drift_bias * math.tanh(gap_bps / self.cfg.drift_scale_bps)

    # --- orders -----------------------------------------------------------------------------------------
    def next_order(self, symbol: str) -> OrderRequest | None:
        """Draw one taker order for ``symbol`` (None without a reference price or if it rounds to zero)."""
        inst = self.instruments[symbol]
        rng = self._rng
        u_side = rng.random()
        u_size = rng.random()
        ref = self.reference.get(symbol)
        if ref is None:
            return None
        side = Side.BUY if u_side < self.buy_probability(symbol) else Side.SELL
        notional = min(self.cfg.max_notional, -math.log(1.0 - u_size) * self.cfg.mean_notional)
        lots = int(Decimal(repr(notional / ref)) / inst.lot_size)
        if lots < inst.min_qty_lots:
            lots = inst.min_qty_lots
        slip = Decimal(repr(self.cfg.slippage_bps)) / Decimal(10_000)
        ref_d = Decimal(repr(ref))
        if side is Side.BUY:
            price = int((ref_d * (1 + slip) / inst.tick_size).to_integral_value(rounding=ROUND_CEILING))
        else:
            price = int((ref_d * (1 - slip) / inst.tick_size).to_integral_value(rounding=ROUND_FLOOR))
        self._seq += 1
        return OrderRequest(symbol=symbol, side=side, qty=lots, price=max(1, price), type=OrderType.LIMIT,
                            tif=TimeInForce.IOC, client_id=f"taker-{self._seq}", owner=self.cfg.owner,
                            venue=self.venue)

    async def arrive(self, symbol: str) -> bool:
        """One arrival on ``symbol``: draw and send an order. Returns True if one was sent."""
        req = self.next_order(symbol)
        if req is None:
            return False
        if await self.router.submit(req):
            self.sent += 1
            return True
        self.refused += 1
        return False

    async def _run(self) -> None:
        symbols = sorted(self.instruments)
        total = self.cfg.rate * len(symbols)
        while True:
            await asyncio.sleep(self._rng.expovariate(total))
            symbol = symbols[self._rng.randrange(len(symbols))]
            venue = self.router.venues.get(self.venue)
            if venue is None or not venue.connected:
                continue
            try:
                await self.arrive(symbol)
            except Exception:  # a refused or failed order must not end the flow
                self.refused += 1

    # --- engine ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._subs = [self.bus.subscribe(PriceTick, self._on_tick), self.bus.subscribe(BBO, self._on_bbo)]
        if self.cfg.rate > 0 and self.instruments:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for s in self._subs:
            s.cancel()
        self._subs.clear()

    def status(self) -> dict[str, Any]:
        return {"venue": self.venue, "sent": self.sent, "refused": self.refused, "rate": self.cfg.rate}


def build(desk: Desk) -> list[Engine]:
    cfg = desk.config.sim
    if not (cfg.enabled and cfg.takers.enabled and desk.config.matching.enabled) or not desk.config.instruments:
        return []
    takers = SimTakers(desk.bus, desk.router, desk.instruments, cfg.takers, venue=desk.config.matching.venue,
                       seed=cfg.seed)
    desk.services["sim-takers"] = takers
    return [takers]
