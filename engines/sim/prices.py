"""Simulated reference prices: a seeded geometric random walk per instrument.

Deterministic for a given seed and step count (:meth:`SimulatedPrices.step`), so tests and snapshots
can drive it by hand; the running engine calls ``step`` at ``sim.tick_hz``.
"""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from typing import TYPE_CHECKING, Any

from engines.bus import Bus
from engines.events import PriceTick

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine


class SimulatedPrices:
    name = "sim-prices"

    def __init__(
        self,
        bus: Bus,
        instruments: dict[str, tuple[float, float]],
        *,
        seed: int = 7,
        tick_hz: float = 4.0,
    ) -> None:
        """``instruments`` maps symbol → (start price, volatility in % per √second)."""
        self.bus = bus
        self.tick_hz = tick_hz
        self.prices = {sym: start for sym, (start, _) in instruments.items()}
        dt = 1.0 / tick_hz
        self._sigma = {sym: vol / 100.0 * math.sqrt(dt) for sym, (_, vol) in instruments.items()}
        # One stream per symbol, independent of dict order and of Python's per-process str hashing.
        self._rngs = {sym: random.Random(seed * 1_000_003 + zlib.crc32(sym.encode())) for sym in instruments}
        self.steps = 0
        self._task: asyncio.Task[None] | None = None

    def step(self) -> None:
        for sym, rng in self._rngs.items():
            sigma = self._sigma[sym]
            price = self.prices[sym] * math.exp(rng.gauss(-0.5 * sigma * sigma, sigma))
            self.prices[sym] = price
            self.bus.publish(PriceTick(symbol=sym, price=price, source="sim"))
        self.steps += 1

    async def _run(self) -> None:
        interval = 1.0 / self.tick_hz
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.step()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def start(self) -> None:
        for sym, price in self.prices.items():  # publish the starting prices at once
            self.bus.publish(PriceTick(symbol=sym, price=price, source="sim"))
        self._task = asyncio.create_task(self._run(), name="sim-prices")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def status(self) -> dict[str, Any]:
        return {"steps": self.steps, "prices": {s: round(p, 6) for s, p in self.prices.items()}}


def build(desk: Desk) -> list[Engine]:
    cfg = desk.config.sim
    if not cfg.enabled or not desk.config.instruments:
        return []
    specs = {sym: (ic.ref_price, ic.volatility) for sym, ic in desk.config.instruments.items()}
    engine = SimulatedPrices(desk.bus, specs, seed=cfg.seed, tick_hz=cfg.tick_hz)
    desk.services["sim-prices"] = engine
    return [engine]
