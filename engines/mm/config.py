from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from engines.configbase import Section


class MMBotConfig(Section):
    """One market-making bot: quotes in bps around a reference price on one instrument and venue."""

    name: str
    symbol: str
    venue: str = "sim"
    enabled: bool = True
    spread_bps: Decimal = Decimal("10")
    levels: int = Field(default=1, ge=1, le=20)
    order_qty: Decimal = Decimal("0.1")
    max_orders_per_second: float = Field(default=5.0, gt=0)
