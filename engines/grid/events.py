"""Grid bot events: status (conflated per bot), market state (conflated per bot), round trips (lossless)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from engines.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class GridBotStatus(Event):
    """A grid bot's state for the console. ``levels`` are (price, "buy" | "sell" | "empty") lowest
    first; P&L figures in quote currency, inventory in base units."""

    bot: str
    symbol: str
    venue: str = "sim"
    state: str = "starting"  # starting, waiting, running, paused, halted, stopped_out, stopped
    reason: str = ""
    levels: tuple[tuple[float, str], ...] = ()
    last_price: float | None = None
    round_trips: int = 0
    grid_profit: float = 0.0
    fees: float = 0.0
    inventory: float = 0.0
    avg_price: float | None = None
    unrealised: float = 0.0
    market_state: str = "unknown"
    last_fill: str = ""
    open_orders: int = 0
    KEY_FIELD: ClassVar[str | None] = "bot"
    CONFLATE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GridMarketState(Event):
    """The bot's market classification (published when the regime changes, and with each status)."""

    bot: str
    symbol: str
    regime: str  # trending, ranging, unknown
    efficiency_ratio: float
    adx: float
    p_trend: float
    direction: str
    action: str = ""  # what the bot does about it: "", "pause_buys", "widen"
    KEY_FIELD: ClassVar[str | None] = "bot"
    CONFLATE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GridRoundTrip(Event):
    """A cell completed a buy and a sell. ``gross`` = qty x (sell - buy), exact; ``profit`` = gross - fees."""

    bot: str
    symbol: str
    cell: int
    buy_price: int  # ticks
    sell_price: int  # ticks
    qty: int  # lots
    gross: Decimal
    fees: float
    profit: float
    KEY_FIELD: ClassVar[str | None] = "bot"
