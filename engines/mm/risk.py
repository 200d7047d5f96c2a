"""Per-bot limits on top of the desk's gate: max position, max order notional, daily loss, drawdown.

A breach is published as ``RiskBreach`` (rule ``mm.<limit>``, scope ``bot:<name>``) and halts the bot:
through the desk's kill switch when there is one (``desk.services["killswitch"].kill(bot_scope(name),
…)`` — which latches the state, cancels the bot's orders on every venue and needs an explicit re-arm),
otherwise the bot halts itself (latched until ``resume()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engines.instruments import Instrument
from engines.mm.config import MMLimits
from engines.mm.pnl import PnL


@dataclass(frozen=True, slots=True)
class Breach:
    rule: str  # mm.max_position, mm.max_order_notional, mm.daily_loss, mm.max_drawdown
    value: Decimal
    limit: Decimal
    detail: str


class BotLimits:
    def __init__(self, limits: MMLimits, instrument: Instrument) -> None:
        self.limits = limits
        self.inst = instrument

    def check_order(self, price_ticks: int, qty_lots: int) -> Breach | None:
        lim = self.limits.max_order_notional
        if lim is None:
            return None
        notional = self.inst.notional(price_ticks, qty_lots)
        if notional > lim:
            return Breach("mm.max_order_notional", notional, lim,
                          f"order {self.inst.fmt_qty(qty_lots)} @ {self.inst.fmt_price(price_ticks)} "
                          f"notional {notional} > {lim}")
        return None

    def check_pnl(self, pnl: PnL) -> Breach | None:
        lim = self.limits
        if lim.max_position is not None and abs(pnl.position) > lim.max_position:
            return Breach("mm.max_position", abs(pnl.position), lim.max_position,
                          f"position {pnl.position} beyond ±{lim.max_position}")
        if lim.daily_loss is not None and -pnl.daily_pnl > lim.daily_loss:
            return Breach("mm.daily_loss", -pnl.daily_pnl, lim.daily_loss,
                          f"today's loss {-pnl.daily_pnl:.2f} > {lim.daily_loss}")
        if lim.max_drawdown is not None and pnl.drawdown > lim.max_drawdown:
            return Breach("mm.max_drawdown", pnl.drawdown, lim.max_drawdown,
                          f"drawdown {pnl.drawdown:.2f} > {lim.max_drawdown}")
        return None

    def usage(self, pnl: PnL) -> dict[str, float]:
        """Fraction of each configured limit in use (1.0 = at the limit)."""
        lim = self.limits
        out: dict[str, float] = {}
        if lim.max_position is not None:
            out["position"] = float(abs(pnl.position) / lim.max_position)
        if lim.daily_loss is not None:
            out["daily_loss"] = float(max(Decimal(0), -pnl.daily_pnl) / lim.daily_loss)
        if lim.max_drawdown is not None:
            out["drawdown"] = float(pnl.drawdown / lim.max_drawdown)
        return out
