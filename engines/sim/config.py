from __future__ import annotations

from pydantic import Field

from engines.configbase import Section


class TakerConfig(Section):
    """Simulated taker flow against the desk's own matching engine (never sent to another venue)."""

    enabled: bool = True
    rate: float = Field(default=1.5, ge=0, description="mean arrivals per second per instrument (Poisson)")
    mean_notional: float = Field(default=3000.0, gt=0, description="mean order size in quote currency (exponential)")
    max_notional: float = Field(default=20000.0, gt=0)
    drift_bias: float = Field(default=0.35, ge=0, le=0.5, description="max shift of the buy probability from 1/2")
    drift_scale_bps: float = Field(default=5.0, gt=0, description="reference-vs-book gap giving ~76% of the bias")
    slippage_bps: float = Field(default=20.0, ge=0, description="IOC limit this far through the reference")
    owner: str = "sim-takers"
    symbols: list[str] = Field(default=[], description="instruments to trade; empty = all")


class SimConfig(Section):
    """Simulated reference prices: a seeded random walk per instrument."""

    enabled: bool = True
    seed: int = 7
    tick_hz: float = Field(default=4.0, gt=0, le=1000, description="price updates per second per instrument")
    takers: TakerConfig = TakerConfig()
