"""Market-maker bus events: the bot's status (conflated per bot) and every order-state transition (lossless)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from engines.events import Event
from engines.orders import Side


@dataclass(frozen=True, slots=True, kw_only=True)
class MMBotStatus(Event):
    """Snapshot of one bot, published on every fill and at ``status_hz``. Money in quote currency."""

    bot: str
    symbol: str
    venue: str
    state: str  # starting, quoting, paused, stale, halted, stopped
    quoting: bool
    reason: str = ""
    reference: float | None = None
    reference_age: float | None = None
    position: float = 0.0  # base units
    avg_price: float = 0.0
    realised: float = 0.0
    unrealised: float = 0.0
    fees: float = 0.0
    net_pnl: float = 0.0
    return_pct: float = 0.0
    inventory_value: float = 0.0
    starting_value: float = 0.0
    bid: float | None = None  # best own bid / ask quote price
    ask: float | None = None
    open_orders: int = 0
    queued: int = 0  # actions waiting in the rate limiter
    fills: int = 0
    limits: dict[str, float] = field(default_factory=dict)  # usage 0..1 (or more when breached) per limit
    KEY_FIELD: ClassVar[str | None] = "bot"
    CONFLATE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class MMOrderState(Event):
    """One transition of one bot order (idle, pending_new, working, partially_filled, filled,
    pending_cancel, canceled, rejected)."""

    bot: str
    symbol: str
    client_id: str
    side: Side
    level: int
    price: int  # ticks
    qty: int  # lots
    filled: int
    state: str
    previous: str
    order_id: int | None = None
    reason: str = ""
    venue: str = "sim"
    # Keyed by order (client ids are "<bot>-<seq>", unique across bots): the remote state cache keeps
    # the latest state of every open order.
    KEY_FIELD: ClassVar[str | None] = "client_id"
