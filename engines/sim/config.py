from __future__ import annotations

from pydantic import Field

from engines.configbase import Section


class SimConfig(Section):
    """Simulated reference prices: a seeded random walk per instrument."""

    enabled: bool = True
    seed: int = 7
    tick_hz: float = Field(default=4.0, gt=0, le=1000, description="price updates per second per instrument")
