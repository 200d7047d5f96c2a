from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from engines.configbase import Section


class GridBotConfig(Section):
    """One grid bot on one instrument and venue."""

    name: str
    symbol: str
    venue: str = "sim"
    enabled: bool = True
    lower: Decimal
    upper: Decimal
    levels: int = Field(default=11, ge=2, le=1000)
    kind: Literal["arithmetic", "geometric", "fibonacci", "volatility"] = "arithmetic"
    order_qty: Decimal = Decimal("0.01")
