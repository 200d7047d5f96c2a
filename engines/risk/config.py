"""Risk engine configuration: pre-trade limits, automatic kill rules, kill-switch behaviour.

Limits apply at three levels. ``limits`` applies to every order, every (owner, instrument) position
and every owner's order rate; its ``daily_loss``/``max_drawdown`` guard the whole desk.
``per_instrument[SYM]`` tightens the per-order and position limits for orders on SYM, and its
loss/drawdown guard SYM across all owners (scope ``instrument:SYM``). ``per_owner[NAME]`` does the same
for one owner (a bot's name, ``fix:<CompID>``, ``operator``; scope ``bot:NAME``). Where several levels
set the same per-order or position limit, the smallest wins.
"""

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


class RiskRules(Section):
    """Automatic kill triggers. Each fires once when its threshold is reached and kills its scope."""

    daily_loss: bool = Field(default=True, description="kill a scope whose day P&L reaches -daily_loss")
    drawdown: bool = Field(
        default=True, description="kill a scope whose drawdown from the day's peak reaches max_drawdown"
    )
    position_breach: bool = Field(
        default=True, description="kill bot:OWNER when |position| exceeds max_position"
    )
    order_storm: int | None = Field(
        default=2000, ge=1, description="kill bot:OWNER after this many order attempts within storm_window"
    )
    storm_window: float = Field(default=1.0, gt=0)
    stale_market_data: float | None = Field(
        default=30.0,
        gt=0,
        description="kill instrument:SYM with open orders and no price for this many seconds",
    )
    fix_session_loss: bool = Field(
        default=True, description="kill the scope of a lost FIX session with open orders"
    )
    check_interval: float = Field(default=0.5, gt=0, description="seconds between timed rule checks")


class RiskConfig(Section):
    limits: RiskLimits = RiskLimits(
        max_order_notional=Decimal("1000000"), max_orders_per_second=500.0, daily_loss=Decimal("50000")
    )
    per_instrument: dict[str, RiskLimits] = {}
    per_owner: dict[str, RiskLimits] = {}
    rules: RiskRules = RiskRules()
    retry_interval: float = Field(
        default=1.0, gt=0, description="seconds between retries of unconfirmed kill-switch cancels"
    )
