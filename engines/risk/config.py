from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from engines.configbase import Section


class RiskLimits(Section):
    """Pre-trade limits; None means no limit. Quantities and notionals in instrument units."""

    max_order_qty: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_orders_per_second: float | None = Field(default=None, gt=0)
    daily_loss: Decimal | None = Field(default=None, description="halt when the day's P&L falls below -this")
    max_drawdown: Decimal | None = None


class RiskConfig(Section):
    limits: RiskLimits = RiskLimits(
        max_order_notional=Decimal("1000000"), max_orders_per_second=500.0, daily_loss=Decimal("50000")
    )
    per_instrument: dict[str, RiskLimits] = {}
    per_owner: dict[str, RiskLimits] = {}
