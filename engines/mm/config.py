from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from engines.configbase import Section


class MMLimits(Section):
    """Per-bot risk limits on top of the desk's gate; None means no limit. A breach halts the bot."""

    max_position: Decimal | None = Field(default=None, gt=0, description="|position| in base units")
    max_order_notional: Decimal | None = Field(default=None, gt=0, description="quote currency per order")
    daily_loss: Decimal | None = Field(default=None, gt=0, description="halt when today's net P&L < -this")
    max_drawdown: Decimal | None = Field(default=None, gt=0, description="halt when net P&L falls this far below its peak")


class MMBotConfig(Section):
    """One market-making bot: quotes in bps around a reference price on one instrument and venue."""

    name: str
    symbol: str
    venue: str = "sim"
    enabled: bool = True
    # --- reference price ---------------------------------------------------------------------------
    reference: str = Field(
        default="sim",
        description='"sim" (simulated prices), "mid" (the bot\'s venue BBO mid), "mid:<venue>", or "binance"',
    )
    reference_symbol: str = Field(default="", description="binance: the exchange symbol, e.g. BTCUSDT")
    binance_url: str = "wss://stream.binance.com:9443/ws"
    stale_after: float = Field(default=5.0, gt=0, description="seconds without a reference update → stop quoting")
    # --- quotes --------------------------------------------------------------------------------------
    spread_bps: Decimal = Field(default=Decimal("10"), ge=0, description="best bid to best ask, in bps of the centre")
    min_spread_bps: Decimal = Field(default=Decimal("0"), ge=0)
    max_spread_bps: Decimal = Field(default=Decimal("500"), gt=0)
    levels: int = Field(default=1, ge=1, le=20)
    level_step_bps: Decimal = Field(default=Decimal("5"), ge=0, description="extra distance per level beyond the first")
    order_qty: Decimal = Field(default=Decimal("0.1"), gt=0, description="size of the first level, base units")
    qty_increment: Decimal = Field(default=Decimal("0"), ge=0, description="size added per further level")
    target_inventory: Decimal = Decimal("0")
    skew_bps_per_unit: Decimal = Field(
        default=Decimal("0"), ge=0, description="centre shift (bps) per base unit of inventory away from target"
    )
    max_skew_bps: Decimal = Field(default=Decimal("50"), ge=0)
    tolerance_bps: Decimal = Field(default=Decimal("2"), ge=0, description="requote only when a price moves more")
    max_order_age: float = Field(default=30.0, gt=0, description="seconds; older orders are refreshed")
    # --- order flow ----------------------------------------------------------------------------------
    max_orders_per_second: float = Field(default=5.0, gt=0)
    burst: int = Field(default=5, ge=1, description="token bucket capacity")
    reconcile_interval: float = Field(default=60.0, ge=0, description="seconds between safety-net reconciles; 0 = off")
    reconcile: Literal["cancel", "adopt"] = Field(
        default="cancel", description="venue orders of this bot it does not know about: cancel or adopt"
    )
    # --- P&L and limits -------------------------------------------------------------------------------
    starting_inventory: Decimal = Decimal("0")
    capital: Decimal = Field(default=Decimal("100000"), gt=0, description="quote currency; denominator of return %")
    limits: MMLimits = MMLimits()
    status_hz: float = Field(default=2.0, gt=0, le=50)

    @model_validator(mode="after")
    def _check(self) -> MMBotConfig:
        if self.min_spread_bps > self.max_spread_bps:
            raise ValueError("min_spread_bps must not exceed max_spread_bps")
        if self.reference == "binance" and not self.reference_symbol:
            raise ValueError('reference "binance" needs reference_symbol (e.g. "BTCUSDT")')
        if not (self.reference in ("sim", "mid", "binance") or self.reference.startswith("mid:")):
            raise ValueError(f"reference {self.reference!r}: expected sim, mid, mid:<venue> or binance")
        return self

    @property
    def reference_source(self) -> str:
        """The ``PriceTick.source`` the bot listens to."""
        if self.reference == "mid":
            return f"mid:{self.venue}"
        return self.reference
