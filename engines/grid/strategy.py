"""The strategy file: what research (``opdesk grid optimize``) hands to live trading (the grid bot).

JSON, validated with pydantic. ``kind="explicit"`` carries the exact level prices; other kinds are
regenerated from lower/upper/levels on the instrument's tick. Quantity per cell is either a fixed
base ``order_qty`` or ``quote_per_level`` (quote / buy price, snapped down to the lot).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engines.grid import levels as lv


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    symbol: str = ""
    kind: Literal["arithmetic", "geometric", "fibonacci", "volatility", "explicit"] = "arithmetic"
    lower: Decimal
    upper: Decimal
    levels: int = Field(ge=2, le=1000)
    prices: list[Decimal] | None = None
    vol_step: Decimal | None = None  # the level gap of a volatility grid
    order_qty: Decimal | None = None
    quote_per_level: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    fee: float = 0.0
    objective: str = ""
    score: float | None = None
    method: str = ""
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check(self) -> Strategy:
        if self.kind == "explicit" and (not self.prices or len(self.prices) != self.levels):
            raise ValueError("an explicit strategy needs 'prices' with 'levels' entries")
        if self.order_qty is None and self.quote_per_level is None:
            raise ValueError("give order_qty or quote_per_level")
        return self

    def plan(self, tick: Decimal, lot: Decimal, *, center: Decimal | None = None) -> lv.GridPlan:
        if self.kind == "explicit":
            assert self.prices is not None
            levels = lv.snap_levels(self.prices, tick)
        else:
            levels = lv.make_levels(self.kind, self.lower, self.upper, self.levels, tick, center=center,
                                    step=self.vol_step)
        qty = lv.quantities(levels, lot, qty=self.order_qty, quote_per_level=self.quote_per_level)
        return lv.GridPlan(levels, qty, self.stop_loss, self.take_profit)


def load_strategy(path: str | Path) -> Strategy:
    return Strategy.model_validate(json.loads(Path(path).read_text()))
