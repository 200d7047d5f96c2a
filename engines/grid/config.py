from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from engines.configbase import Section


class GridBotConfig(Section):
    """One grid bot on one instrument and venue (see README "Grid bot")."""

    name: str
    symbol: str
    venue: str = "sim"
    enabled: bool = True
    lower: Decimal | None = None
    upper: Decimal | None = None
    levels: int = Field(default=11, ge=2, le=1000)
    kind: Literal["arithmetic", "geometric", "fibonacci", "volatility"] = "arithmetic"
    vol_step: Decimal | None = Field(default=None, gt=0, description="volatility grids: the level gap")
    vol_window: int = Field(
        default=0, ge=0, description="volatility grids without vol_step: reference prices to measure over first"
    )
    vol_multiplier: Decimal = Field(
        default=Decimal("1"), gt=0, description="level gap = this x realised stdev per update x price"
    )
    order_qty: Decimal | None = Decimal("0.01")
    quote_per_level: Decimal | None = Field(default=None, gt=0, description="size cells by quote instead")
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    strategy: Path | None = Field(default=None, description="strategy JSON from `opdesk grid optimize`")
    # What to do with the bot's orders already at the venue when it starts, and its own when it stops.
    on_start: Literal["cancel", "keep", "recover"] = "cancel"
    on_stop: Literal["cancel", "keep"] = "cancel"
    initial_buy: bool = False  # buy the base for the sell levels at market when the grid is laid
    liquidate_on_stop: bool = True  # stop-loss / take-profit: close the inventory at market
    # Market state
    market_window: int = Field(default=60, ge=8)
    er_threshold: float = Field(default=0.6, ge=0)
    adx_threshold: float = Field(default=45.0, ge=0)
    trend_action: Literal["none", "pause_buys", "widen"] = "pause_buys"
    widen_levels: int = Field(default=2, ge=1)
    status_interval: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> GridBotConfig:
        if self.strategy is None:
            if self.lower is None or self.upper is None:
                raise ValueError("give lower and upper (or a strategy file)")
            if not self.lower < self.upper:
                raise ValueError(f"lower {self.lower} must be below upper {self.upper}")
            if self.kind == "volatility" and self.vol_step is None and self.vol_window < 3:
                raise ValueError(
                    "a volatility grid needs vol_step (the level gap; see `opdesk grid optimize`) "
                    "or vol_window >= 3 (measure it from the reference prices before laying the grid)"
                )
        if self.order_qty is None and self.quote_per_level is None:
            raise ValueError("give order_qty or quote_per_level")
        return self
